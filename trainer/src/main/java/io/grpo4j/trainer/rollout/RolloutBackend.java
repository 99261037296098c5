package io.grpo4j.trainer.rollout;

import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.SamplingParams;
import java.util.List;

/**
 * Where completions come from: the in-process sampler, or (later) inference servers. Results are prompt-major,
 * n per prompt; the same seed gives the same tokens.
 */
public interface RolloutBackend extends AutoCloseable {
  List<Generation> sample(long[][] prompts, SamplingParams params, int n, long seed);

  @Override
  default void close() {}
}
