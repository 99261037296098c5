package io.grpo4j.rewards.builtin;

import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.ParamSpec;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardConfigException;
import io.grpo4j.rewards.RewardFunction;
import io.grpo4j.rewards.RewardFunctionProvider;
import io.grpo4j.rewards.math.AnswerExtractor;
import io.grpo4j.rewards.math.MathEquivalence;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * R1's accuracy reward for math: 1 when the completion's final answer equals the row's gold answer, else 0.
 * Not applicable (null) on a row without a gold answer.
 */
public final class MathAnswerReward implements RewardFunction {
  private final AnswerExtractor extractor;
  private final MathEquivalence equivalence;
  private final String goldField;

  public MathAnswerReward(AnswerExtractor extractor, MathEquivalence equivalence, String goldField) {
    this.extractor = extractor;
    this.equivalence = equivalence;
    this.goldField = goldField;
  }

  @Override
  public String name() {
    return "math_answer";
  }

  @Override
  public List<Double> score(List<Completion> completions) {
    List<Double> out = new ArrayList<>(completions.size());
    for (Completion c : completions) {
      String gold = c.field(goldField);
      if (gold == null || gold.isBlank()) {
        out.add(null);
        continue;
      }
      out.add(score(gold, c.text()));
    }
    return out;
  }

  public double score(String gold, String completion) {
    String pred = extractor.extract(completion);
    return pred != null && equivalence.equivalent(AnswerExtractor.goldAnswer(gold), pred) ? 1.0 : 0.0;
  }

  public static final class Provider implements RewardFunctionProvider {
    @Override
    public String name() {
      return "math_answer";
    }

    @Override
    public String description() {
      return "1 if the final answer (<answer>, last \\boxed{}, #### or regex) equals the gold answer";
    }

    @Override
    public List<ParamSpec> params() {
      return List.of(
          ParamSpec.of("extract", "list", List.of("answer_tag", "boxed", "gsm8k"),
              "where to look for the answer, in order: answer_tag | boxed | gsm8k | regex"),
          ParamSpec.of("regex", "string", null, "pattern whose group 1 is the answer (with extract: [regex])"),
          ParamSpec.of("relative_tolerance", "double", 1e-6, "numbers closer than this (relatively) are equal"),
          ParamSpec.of("degrees_as_radians", "boolean", false, "treat 90^\\circ as \\pi/2 instead of 90"),
          ParamSpec.of("answer_field", "string", "answer", "the row field holding the gold answer"));
    }

    @Override
    public RewardFunction create(Params p) {
      List<String> methods = p.getList("extract");
      for (String m : methods) {
        if (!List.of("answer_tag", "boxed", "gsm8k", "regex").contains(m)) {
          throw new RewardConfigException("reward \"math_answer\": param \"extract\" has \"" + m
              + "\"; allowed: answer_tag, boxed, gsm8k, regex");
        }
      }
      Pattern regex = null;
      if (p.getString("regex") != null) {
        try {
          regex = Pattern.compile(p.getString("regex"), Pattern.DOTALL);
        } catch (PatternSyntaxException e) {
          throw new RewardConfigException("reward \"math_answer\": param \"regex\" is invalid: " + e.getMessage());
        }
      } else if (methods.contains("regex")) {
        throw new RewardConfigException("reward \"math_answer\": extract lists regex but param \"regex\" is not set");
      }
      return new MathAnswerReward(new AnswerExtractor(methods, regex),
          new MathEquivalence(p.doubleIn("relative_tolerance", 0, 1), p.getBoolean("degrees_as_radians")),
          p.getString("answer_field"));
    }
  }
}
