package io.grpo4j.datasets.tasks;

import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.ParamSpec;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardFunction;
import io.grpo4j.rewards.RewardFunctionProvider;
import java.util.List;

/** Each task's checker as a reward plugin named after the task; rows from other tasks are not applicable. */
public final class TaskRewards {
  private TaskRewards() {}

  static RewardFunction of(Task task) {
    return new RewardFunction() {
      @Override
      public String name() {
        return task.name();
      }

      @Override
      public List<Double> score(List<Completion> completions) {
        return completions.stream().map(c -> applies(c) ? task.check(c.fields(), c.text()) : null).toList();
      }

      private boolean applies(Completion c) {
        return switch (task.name()) {
          case "countdown" -> c.fields().containsKey("numbers") && c.fields().containsKey("target");
          case "sort" -> c.fields().containsKey("numbers") && c.fields().containsKey("answer");
          default -> c.fields().containsKey("answer");
        };
      }
    };
  }

  abstract static class Base implements RewardFunctionProvider {
    @Override
    public List<ParamSpec> params() {
      return List.of();
    }

    @Override
    public RewardFunction create(Params params) {
      return of(Tasks.create(name(), java.util.Map.of()));
    }
  }

  public static final class Arithmetic extends Base {
    @Override
    public String name() {
      return "arithmetic";
    }

    @Override
    public String description() {
      return "1 if <answer> holds the exact integer value of the arithmetic task's expression (partial: true gives"
          + " the share of the gold answer's digits in place instead, a denser signal for a weak start)";
    }

    @Override
    public List<ParamSpec> params() {
      return List.of(ParamSpec.of("partial", "boolean", false, "credit each digit of the answer that is right and in"
          + " its place (counted from the ones), divided by the longer of the two answers' lengths; exact = 1"));
    }

    @Override
    public RewardFunction create(Params params) {
      if (!params.getBoolean("partial")) {
        return super.create(params);
      }
      return new RewardFunction() {
        @Override
        public String name() {
          return "arithmetic";
        }

        @Override
        public List<Double> score(List<Completion> completions) {
          return completions.stream().map(c -> c.fields().containsKey("answer")
              ? ArithmeticTask.digitCredit(c.fields(), c.text()) : null).toList();
        }
      };
    }
  }

  public static final class Countdown extends Base {
    @Override
    public String name() {
      return "countdown";
    }

    @Override
    public String description() {
      return "1 if <answer> is an equation using each given number once that equals the target (exact)";
    }
  }

  public static final class Sort extends Base {
    @Override
    public String name() {
      return "sort";
    }

    @Override
    public String description() {
      return "1 if <answer> lists the numbers in ascending order";
    }
  }
}
