package io.grpo4j.rewards;

/** A reward configuration a run cannot start with; the message names the plugin and key. */
public class RewardConfigException extends IllegalArgumentException {
  public RewardConfigException(String message) {
    super(message);
  }
}
