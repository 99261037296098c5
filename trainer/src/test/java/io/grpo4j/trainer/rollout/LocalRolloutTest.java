package io.grpo4j.trainer.rollout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.ParallelShards;
import io.grpo4j.trainer.model.Runtime;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * In-process sampling split over the cores (one prompt shard per core on a small CPU model) gives what one batch on
 * one thread gives: the same completions, in the same order, with the same prompt indices (a rare token may differ
 * by float rounding between batch shapes over very long runs, never over a few hundred tokens as here).
 */
class LocalRolloutTest {
  static NDManager root;
  static CausalLM model;
  static HfTokenizer tok;

  @BeforeAll
  static void load() throws Exception {
    Path dir = Fixtures.model("tiny-qwen2");
    root = NDManager.newBaseManager();
    model = HfCheckpoint.load(dir, root.newSubManager());
    tok = HfTokenizer.load(dir);
    Runtime.threadsFor(model.config()); // one intra-op thread for a model this small: the sharded path
  }

  @AfterAll
  static void close() {
    tok.close();
    root.close();
  }

  @Test
  void shardedSamplingEqualsOneBatchOnOneThread() {
    long[][] prompts = new long[7][];
    for (int i = 0; i < prompts.length; i++) { // lengths 2..8: every shard pads differently from the whole batch
      prompts[i] = new long[2 + i];
      for (int t = 0; t < prompts[i].length; t++) {
        prompts[i][t] = 5 + (31L * i + 7L * t) % 400;
      }
    }
    SamplingParams params = new SamplingParams(12, false, 0.9, 0.95, 40, 0.0, 1.0, tok.stopTokenIds());
    LocalRollout rollout = new LocalRollout(model, tok.padTokenId());
    int n = 10; // 70 sequences: two shards of at least 32
    boolean cores = java.lang.Runtime.getRuntime().availableProcessors() > 1;
    assertTrue(ParallelShards.forInference(model, prompts.length, prompts.length * n) > 1 || !cores,
        "a small CPU model samples in more than one shard where there are cores");
    assertEquals(1, ParallelShards.forInference(model, prompts.length, 31), "a small batch stays on one thread");
    for (int first : new int[] {0, 5}) {
      List<Generation> got = rollout.sample(prompts, params, n, 123, first);
      List<Sampler.Request> reqs = new ArrayList<>();
      for (int i = 0; i < prompts.length; i++) {
        reqs.add(new Sampler.Request(prompts[i], n, params, Sampler.promptSeed(123, first + i), false));
      }
      List<Generation> want = new Sampler(model, tok.padTokenId(), false).generate(reqs, null, null);
      OpenAiRolloutTest.assertSame(want, got);
      long tokens = want.stream().mapToLong(g -> g.completionIds().length).sum();
      assertEquals(tokens, rollout.lastStats().tokens());
      assertTrue(rollout.lastStats().nanos() > 0);
    }
    assertEquals(List.of(), rollout.sample(new long[0][], params, 3, 1, 0));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> rollout.sample(new long[][] {{1, 2}, {}}, params, 2, 1, 0));
    assertTrue(e.getMessage().contains("prompt 1"), e.getMessage());
  }
}
