package io.grpo4j.rewards.builtin;

import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.ParamSpec;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardConfigException;
import io.grpo4j.rewards.RewardFunction;
import io.grpo4j.rewards.RewardFunctionProvider;
import io.grpo4j.rewards.math.AnswerExtractor;
import io.grpo4j.rewards.math.MathEquivalence;
import io.grpo4j.rewards.math.MathVerifier;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * R1's accuracy reward for math: 1 when the completion's final answer equals the row's gold answer, else 0.
 * Not applicable (null) on a row without a gold answer.
 */
public final class MathAnswerReward implements RewardFunction {
  private final MathVerifier verifier;
  private final String goldField;

  public MathAnswerReward(AnswerExtractor extractor, MathEquivalence equivalence, String goldField) {
    this.verifier = new MathVerifier(extractor, equivalence);
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
    return verifier.verify(gold, completion) ? 1.0 : 0.0;
  }

  public static final class Provider implements RewardFunctionProvider {
    @Override
    public String name() {
      return "math_answer";
    }

    @Override
    public String description() {
      return "1 if the final answer equals the gold answer (extraction and comparison as Hugging Face Math-Verify)";
    }

    @Override
    public List<ParamSpec> params() {
      return List.of(
          ParamSpec.of("extract", "list", AnswerExtractor.DEFAULT_MODES,
              "where answers are looked for: answer_tag (only inside the last <answer> block, when there is one),"
                  + " boxed (\\boxed{}, first), latex ($...$, \\(...\\), \\[...\\], $$...$$, a bare \\frac), expr"
                  + " (plain numbers and expressions), gsm8k (#### tail), regex; priority: 'final answer is X. I hope',"
                  + " boxed, 'final answer ... is X', 'answer: X', 'answer ... X', anything; the last match wins"),
          ParamSpec.of("regex", "string", null, "pattern whose group 1 is the answer (with extract: [regex])"),
          ParamSpec.of("relative_tolerance", "double", 1e-6, "numbers closer than this (relatively) are equal"),
          ParamSpec.of("precision", "int", 6, "a number written with a decimal point matches when equal after"
              + " rounding both to this many decimals (Math-Verify's float_rounding)"),
          ParamSpec.of("degrees_as_radians", "boolean", false, "treat 90^\\circ as \\pi/2 instead of 90"),
          ParamSpec.of("answer_field", "string", "answer", "the row field holding the gold answer"));
    }

    @Override
    public RewardFunction create(Params p) {
      List<String> methods = p.getList("extract");
      for (String m : methods) {
        if (!AnswerExtractor.MODES.contains(m)) {
          throw new RewardConfigException("reward \"math_answer\": param \"extract\" has \"" + m
              + "\"; allowed: " + String.join(", ", AnswerExtractor.MODES));
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
          new MathEquivalence(p.doubleIn("relative_tolerance", 0, 1), p.getBoolean("degrees_as_radians"),
              p.intIn("precision", 0, 15)),
          p.getString("answer_field"));
    }
  }
}
