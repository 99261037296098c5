package io.grpo4j.rewards.builtin;

import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.ParamSpec;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardConfigException;
import io.grpo4j.rewards.RewardFunction;
import io.grpo4j.rewards.RewardFunctionProvider;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The R1 format reward: {@code <think>...</think>} then {@code <answer>...</answer>}, each exactly once, in that
 * order, nothing but whitespace outside. {@code mode: partial} gives 0.25 per tag that appears exactly once
 * (a denser signal early in training).
 */
public final class FormatReward implements RewardFunction {
  static final String DEFAULT_REGEX = "^\\s*<think>.*?</think>\\s*<answer>.*?</answer>\\s*$";
  private static final String[] TAGS = {"<think>", "</think>", "<answer>", "</answer>"};
  private final Pattern pattern;
  private final boolean partial;
  private final String prefix;

  public FormatReward(Pattern pattern, boolean partial, String prefix) {
    this.pattern = pattern;
    this.partial = partial;
    this.prefix = prefix == null ? "" : prefix;
  }

  @Override
  public String name() {
    return "format";
  }

  @Override
  public List<Double> score(List<Completion> completions) {
    return completions.stream().map(c -> score(prefix + c.text())).toList();
  }

  double score(String text) {
    if (partial) {
      double s = 0;
      for (String tag : TAGS) {
        if (count(text, tag) == 1) {
          s += 0.25;
        }
      }
      return s;
    }
    for (String tag : TAGS) {
      if (count(text, tag) != 1) {
        return 0.0; // each tag exactly once: no nested or repeated blocks
      }
    }
    return pattern.matcher(text).matches() ? 1.0 : 0.0;
  }

  static int count(String s, String tag) {
    int n = 0;
    int at = 0;
    while ((at = s.indexOf(tag, at)) >= 0) {
      n++;
      at += tag.length();
    }
    return n;
  }

  public static final class Provider implements RewardFunctionProvider {
    @Override
    public String name() {
      return "format";
    }

    @Override
    public String description() {
      return "1 if the completion is <think>...</think><answer>...</answer> (strict), or 0.25 per well-formed tag (partial)";
    }

    @Override
    public List<ParamSpec> params() {
      return List.of(
          ParamSpec.of("mode", "string", "strict", "strict | partial"),
          ParamSpec.of("regex", "string", DEFAULT_REGEX, "the whole-completion pattern of strict mode (DOTALL)"),
          ParamSpec.of("prefix", "string", "",
              "text prepended before checking, e.g. \"<think>\" when the chat template opens the think block"));
    }

    @Override
    public RewardFunction create(Params p) {
      String mode = p.oneOf("mode", "strict", "partial");
      Pattern pat;
      try {
        pat = Pattern.compile(p.getString("regex"), Pattern.DOTALL);
      } catch (PatternSyntaxException e) {
        throw new RewardConfigException("reward \"format\": param \"regex\" is not a valid regex: " + e.getMessage());
      }
      return new FormatReward(pat, mode.equals("partial"), p.getString("prefix"));
    }
  }
}
