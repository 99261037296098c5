package io.grpo4j.trainer.generation;

/**
 * One sampled completion.
 *
 * @param promptIndex which prompt of the batch it continues
 * @param completionIds generated tokens, including the stop token when it ended with one
 * @param finishReason "stop" (emitted a stop token) or "length" (hit max new tokens)
 */
public record Generation(int promptIndex, long[] completionIds, String finishReason) {
  public boolean stopped() {
    return finishReason.equals("stop");
  }
}
