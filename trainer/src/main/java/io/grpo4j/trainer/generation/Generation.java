package io.grpo4j.trainer.generation;

/**
 * One sampled completion.
 *
 * @param promptIndex which prompt of the batch it continues
 * @param completionIds generated tokens, including the stop token when it ended with one
 * @param finishReason "stop" (emitted a stop token or stop string) or "length" (hit max new tokens)
 * @param logprobs the sampler's log-probability of each generated token under softmax(logits / temperature), or
 *     null when not asked for; a remote engine's values measure how far it drifts from the trainer
 */
public record Generation(int promptIndex, long[] completionIds, String finishReason, float[] logprobs) {
  public Generation(int promptIndex, long[] completionIds, String finishReason) {
    this(promptIndex, completionIds, finishReason, null);
  }

  public boolean stopped() {
    return finishReason.equals("stop");
  }

  /** The same completion as the continuation of another prompt index (batches being merged or filtered). */
  public Generation withPromptIndex(int index) {
    return new Generation(index, completionIds, finishReason, logprobs);
  }
}
