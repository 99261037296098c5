package io.grpo4j.trainer.rollout;

import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.SamplingParams;
import java.nio.file.Path;
import java.util.List;

/**
 * Where completions come from: the in-process sampler ({@link LocalRollout}) or OpenAI-compatible inference
 * servers ({@link OpenAiRollout}). Results are prompt-major, n per prompt; prompt i samples with seed
 * {@code Sampler.promptSeed(seed, i)}, so the same seed gives the same tokens from either.
 */
public interface RolloutBackend extends AutoCloseable {
  default List<Generation> sample(long[][] prompts, SamplingParams params, int n, long seed) {
    return sample(prompts, params, n, seed, 0);
  }

  /**
   * As above, the prompts being prompts {@code first, first + 1, ...} of a larger batch: prompt i samples with
   * {@code Sampler.promptSeed(seed, first + i)}, as it would in the whole batch (a data-parallel rank's share).
   */
  List<Generation> sample(long[][] prompts, SamplingParams params, int n, long seed, int first);

  /**
   * What the last {@link #sample} cost.
   *
   * @param nanos time spent sampling (wall clock for remote servers)
   * @param tokens completion tokens generated
   * @param retries requests sent again after a server failed
   * @param healthyServers servers in the rotation afterwards (1 for the local sampler)
   */
  record Stats(long nanos, long tokens, int retries, int healthyServers) {}

  Stats lastStats();

  /** The policy's current weights are in {@code dir} (an HF folder): make the next samples use them. */
  default void syncWeights(Path dir) {}

  @Override
  default void close() {}
}
