package io.grpo4j.rewards.builtin;

import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.ParamSpec;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardConfigException;
import io.grpo4j.rewards.RewardFunction;
import io.grpo4j.rewards.RewardFunctionProvider;
import java.util.List;

/**
 * DAPO's soft overlong punishment: 0 up to {@code max_length - buffer} tokens, then falling linearly to -1 at
 * {@code max_length}, and -1 beyond (or whenever the completion was cut off, if {@code penalize_truncated}).
 */
public final class LengthReward implements RewardFunction {
  private final int maxLength;
  private final int buffer;
  private final boolean penalizeTruncated;

  public LengthReward(int maxLength, int buffer, boolean penalizeTruncated) {
    this.maxLength = maxLength;
    this.buffer = buffer;
    this.penalizeTruncated = penalizeTruncated;
  }

  @Override
  public String name() {
    return "length";
  }

  @Override
  public List<Double> score(List<Completion> completions) {
    return completions.stream().map(c -> value(c.tokenCount(), c.truncated())).toList();
  }

  double value(int length, boolean truncated) {
    if (penalizeTruncated && truncated) {
      return -1.0;
    }
    int free = maxLength - buffer;
    if (length <= free) {
      return 0.0;
    }
    if (length >= maxLength) {
      return -1.0;
    }
    return (free - length) / (double) buffer;
  }

  public static final class Provider implements RewardFunctionProvider {
    @Override
    public String name() {
      return "length";
    }

    @Override
    public String description() {
      return "soft overlong penalty: 0 up to max_length - buffer tokens, linear to -1 at max_length";
    }

    @Override
    public List<ParamSpec> params() {
      return List.of(
          ParamSpec.required("max_length", "int", "the completion budget in tokens (usually max_completion_length)"),
          ParamSpec.of("buffer", "int", null, "length of the linear ramp in tokens (default: max_length / 4)"),
          ParamSpec.of("penalize_truncated", "boolean", false, "give -1 to every completion cut off by the budget"));
    }

    @Override
    public RewardFunction create(Params p) {
      int max = p.intIn("max_length", 1, Integer.MAX_VALUE);
      int buffer = p.asMap().get("buffer") == null ? Math.max(1, max / 4) : p.getInt("buffer");
      if (buffer < 1 || buffer > max) {
        throw new RewardConfigException("reward \"length\": param \"buffer\" = " + buffer + " must be in [1, "
            + max + "]");
      }
      return new LengthReward(max, buffer, p.getBoolean("penalize_truncated"));
    }
  }
}
