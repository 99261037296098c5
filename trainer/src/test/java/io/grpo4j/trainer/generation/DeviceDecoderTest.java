package io.grpo4j.trainer.generation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The device path (static cache, tokens picked by tensor ops, CUDA graphs on a GPU) against the host path
 * (TokenPicker on each row's logits): the same tokens for greedy and for seeded sampling under every filter, the
 * same log-probs. On the CPU both run eagerly; on a GPU (the golden tests' device) the device path replays graphs.
 */
class DeviceDecoderTest {
  private static final long[][] PROMPTS = {{1, 20, 30, 40, 2}, {1, 7, 9}, {1, 100, 101, 102, 103, 104, 105}};

  @ParameterizedTest
  @ValueSource(strings = {"tiny-qwen2", "tiny-llama", "tiny-qwen3"})
  void greedyMatchesHostPath(String name) throws Exception {
    compare(name, List.of(SamplingParams.greedy(12)), 1, 0L);
  }

  @Test
  void seededSamplingMatchesHostPathUnderEveryFilter() throws Exception {
    SamplingParams base = SamplingParams.sample(10, 0.8);
    compare("tiny-qwen2", List.of(base), 4, 11L);
    compare("tiny-qwen2", List.of(base.withFilters(1.0, 5, 0.0, 1.0)), 3, 12L); // top-k
    compare("tiny-qwen2", List.of(base.withFilters(0.7, 0, 0.0, 1.0)), 3, 13L); // top-p
    compare("tiny-qwen2", List.of(base.withFilters(0.9, 20, 0.05, 1.0)), 3, 14L); // top-k, top-p, min-p
    compare("tiny-qwen2", List.of(base.withFilters(1.0, 0, 0.0, 1.3)), 3, 15L); // repetition penalty
    compare("tiny-qwen2", List.of(SamplingParams.greedy(10).withFilters(1.0, 0, 0.0, 1.5)), 1, 16L);
  }

  @Test
  void requestsWithTheirOwnParametersStopsAndLengthsShareABatch() throws Exception {
    List<SamplingParams> mixed = List.of(
        SamplingParams.sample(6, 1.2).withFilters(0.8, 0, 0.0, 1.0).withStopTokenIds(new int[] {5, 6}),
        SamplingParams.greedy(9),
        SamplingParams.sample(12, 0.6).withFilters(1.0, 8, 0.1, 1.2));
    compare("tiny-qwen2", mixed, 3, 21L);
  }

  /** Runs the same requests through both paths and compares tokens, finish reasons and log-probs. */
  private static void compare(String name, List<SamplingParams> params, int n, long seed) throws Exception {
    try (NDManager root = NDManager.newBaseManager();
        CausalLM model = HfCheckpoint.load(Fixtures.model(name), root.newSubManager())) {
      List<Sampler.Request> reqs = new ArrayList<>();
      for (int i = 0; i < PROMPTS.length; i++) {
        reqs.add(new Sampler.Request(PROMPTS[i], n, params.get(i % params.size()), seed + i, true));
      }
      List<Generation> host = new Sampler(model, 0, false).generate(reqs, null, null);
      Sampler onDevice = new Sampler(model, 0, true);
      List<Generation> dev = onDevice.generate(reqs, null, null);
      List<Generation> again = onDevice.generate(reqs, null, null); // a second batch of the same shape: replays
      assertEquals(host.size(), dev.size());
      for (int i = 0; i < host.size(); i++) {
        String what = name + " " + params + " row " + i;
        assertArrayEquals(host.get(i).completionIds(), dev.get(i).completionIds(), what);
        assertArrayEquals(dev.get(i).completionIds(), again.get(i).completionIds(), what + " (second batch)");
        assertEquals(host.get(i).finishReason(), dev.get(i).finishReason(), what);
        float[] a = host.get(i).logprobs();
        float[] b = dev.get(i).logprobs();
        assertEquals(a.length, b.length);
        for (int k = 0; k < a.length; k++) {
          assertEquals(a[k], b[k], 2e-4, what + " logprob " + k);
          assertTrue(b[k] <= 1e-6, what + " logprob " + k + " is a log-probability");
        }
      }
    }
  }
}
