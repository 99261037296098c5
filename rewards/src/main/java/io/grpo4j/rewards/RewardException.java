package io.grpo4j.rewards;

/** A reward failed while scoring and the configuration asked to stop the run ({@code fail_fast: true}). */
public class RewardException extends RuntimeException {
  public RewardException(String message, Throwable cause) {
    super(message, cause);
  }
}
