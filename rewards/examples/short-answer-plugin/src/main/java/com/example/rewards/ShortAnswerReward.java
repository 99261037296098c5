package com.example.rewards;

import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.ParamSpec;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardFunction;
import io.grpo4j.rewards.RewardFunctionProvider;
import java.util.List;

/** Rewards answers (the text inside <answer>) that are at most max_chars long: concise final answers. */
public final class ShortAnswerReward implements RewardFunction {
  private final int maxChars;

  public ShortAnswerReward(int maxChars) {
    this.maxChars = maxChars;
  }

  @Override
  public String name() {
    return "short_answer";
  }

  @Override
  public List<Double> score(List<Completion> completions) {
    return completions.stream().map(c -> {
      int open = c.text().indexOf("<answer>");
      int close = c.text().indexOf("</answer>");
      if (open < 0 || close < open) {
        return 0.0;
      }
      return c.text().substring(open + 8, close).strip().length() <= maxChars ? 1.0 : 0.0;
    }).toList();
  }

  /** Registered in META-INF/services/io.grpo4j.rewards.RewardFunctionProvider. */
  public static final class Provider implements RewardFunctionProvider {
    @Override
    public String name() {
      return "short_answer";
    }

    @Override
    public String description() {
      return "1 when the <answer> block has at most max_chars characters";
    }

    @Override
    public List<ParamSpec> params() {
      return List.of(ParamSpec.of("max_chars", "int", 20, "longest answer that still earns the reward"));
    }

    @Override
    public RewardFunction create(Params params) {
      return new ShortAnswerReward(params.intIn("max_chars", 1, 1_000_000));
    }
  }
}
