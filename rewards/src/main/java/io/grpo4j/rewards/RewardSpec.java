package io.grpo4j.rewards;

import java.util.Map;

/**
 * One configured reward: {@code {name, weight, params}} in YAML, plus an optional per-plugin time budget.
 *
 * @param alias the name in metrics and output (defaults to {@code name}; lets one plugin run twice)
 * @param timeoutSeconds 0 = use the reward set's default
 */
public record RewardSpec(String name, String alias, double weight, Map<String, Object> params, double timeoutSeconds) {
  public RewardSpec {
    if (name == null || name.isBlank()) {
      throw new RewardConfigException("rewards: every entry needs a \"name\"");
    }
    if (!Double.isFinite(weight)) {
      throw new RewardConfigException("reward \"" + name + "\": weight must be a finite number, got " + weight);
    }
    if (timeoutSeconds < 0) {
      throw new RewardConfigException("reward \"" + name + "\": timeout_s must be >= 0");
    }
    alias = alias == null || alias.isBlank() ? name : alias;
    params = params == null ? Map.of() : params;
  }

  public static RewardSpec of(String name, double weight, Map<String, Object> params) {
    return new RewardSpec(name, null, weight, params, 0);
  }
}
