package io.grpo4j.trainer.rollout;

import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.model.CausalLM;
import java.util.List;

/** Sampling with the policy itself, in this process (KV cache, each prompt prefilled once per group). */
public final class LocalRollout implements RolloutBackend {
  private final Sampler sampler;

  public LocalRollout(CausalLM policy, int padId) {
    this.sampler = new Sampler(policy, padId);
  }

  @Override
  public List<Generation> sample(long[][] prompts, SamplingParams params, int n, long seed, int first) {
    if (first == 0) {
      return sampler.generate(prompts, params, n, seed);
    }
    List<Sampler.Request> reqs = new java.util.ArrayList<>(prompts.length);
    for (int i = 0; i < prompts.length; i++) {
      reqs.add(new Sampler.Request(prompts[i], n, params, Sampler.promptSeed(seed, first + i), false));
    }
    return sampler.generate(reqs, null, null);
  }

  @Override
  public Stats lastStats() {
    Sampler.Timing t = sampler.lastTiming();
    return new Stats(t.prefillNanos() + t.decodeNanos() + t.pickNanos(), t.generatedTokens(), 0, 1);
  }
}
