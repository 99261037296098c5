package io.grpo4j.trainer.generation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.device.CudaGraph;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.Precision;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Sequences that join a running batch mid-way, leave it when done, and sample exactly the tokens the batch sampler
 * gives them alone, whatever prompt lengths they share the cache with.
 */
class ContinuousBatcherTest {
  static NDManager root;
  static CausalLM model;

  @BeforeAll
  static void load() throws Exception {
    root = NDManager.newBaseManager();
    model = HfCheckpoint.load(Fixtures.model("tiny-qwen2"), root.newSubManager());
  }

  @AfterAll
  static void close() {
    root.close();
  }

  /** Collects one sequence's tokens. */
  static class Collect implements ContinuousBatcher.Sink {
    final List<Long> tokens = new ArrayList<>();
    final List<Float> logprobs = new ArrayList<>();
    final List<Map<Long, Float>> tops = new ArrayList<>();
    String reason;

    @Override
    public void token(long token, float logprob, Map<Long, Float> top) {
      tokens.add(token);
      logprobs.add(logprob);
      if (top != null) {
        tops.add(top);
      }
    }

    @Override
    public void done(String r) {
      reason = r;
    }

    long[] ids() {
      return tokens.stream().mapToLong(Long::longValue).toArray();
    }
  }

  static ContinuousBatcher.Seq seq(long[] prompt, SamplingParams p, long seed, int stream, Collect sink) {
    // the batch sampler's prompt i of a call with seed s samples with promptSeed(s, i)
    return new ContinuousBatcher.Seq(prompt, p, Sampler.promptSeed(seed, 0), stream, 0, -1, true, sink, null);
  }

  /**
   * Host picking (the CPU default) gives the tokens of the batch sampler's host path; device picking (the GPU
   * default, run here on the CPU) those of its device path. Both again with slot decoding (the CUDA default, run here
   * eagerly), whose fixed buffers must not change what anyone samples.
   */
  @ParameterizedTest
  @ValueSource(strings = {"host", "device", "host, slots", "device, slots"})
  void sequencesJoinAndLeaveMidBatchAndSampleWhatTheyWouldAlone(String mode) {
    boolean onDevice = mode.startsWith("device");
    SamplingParams longP = SamplingParams.sample(40, 0.9);
    SamplingParams shortP = SamplingParams.sample(5, 0.9);
    long[] a = {11, 12, 13};
    long[] b = {21, 22, 23, 24, 25, 26, 27, 28, 29, 30}; // longer prompt: the running cache is padded on the left
    long[] c = {7};
    Sampler sampler = new Sampler(model, 0, onDevice);
    long[] aliceAlone = sampler.generate(new long[][] {a}, longP, 2, 100).get(1).completionIds();
    long[] bobAlone = sampler.generate(new long[][] {b}, shortP, 1, 200).get(0).completionIds();
    long[] carolAlone = sampler.generate(new long[][] {c}, longP, 1, 300).get(0).completionIds();
    try (ContinuousBatcher batcher = new ContinuousBatcher(model, 0, onDevice, mode.endsWith("slots") ? 64 : 0)) {
      Collect a0 = new Collect();
      Collect a1 = new Collect();
      batcher.admit(List.of(seq(a, longP, 100, 0, a0), seq(a, longP, 100, 1, a1)));
      for (int i = 0; i < 10; i++) {
        batcher.step();
      }
      Collect bob = new Collect();
      batcher.admit(List.of(seq(b, shortP, 200, 0, bob)));
      assertEquals(3, batcher.activeRows());
      while (bob.reason == null) {
        batcher.step();
      }
      assertEquals(2, batcher.activeRows()); // bob left as soon as he was done; alice goes on
      assertEquals("length", bob.reason);
      assertArrayEquals(bobAlone, bob.ids());
      Collect carol = new Collect();
      batcher.admit(List.of(seq(c, longP, 300, 0, carol)));
      while (batcher.step()) {
        // until everyone is done
      }
      assertArrayEquals(aliceAlone, a1.ids());
      assertArrayEquals(carolAlone, carol.ids());
      assertEquals(40, a0.tokens.size());
      assertEquals(0, batcher.activeRows());
      assertTrue(batcher.meanRows() > 1.5, "occupancy " + batcher.meanRows());
    }
  }

  /**
   * Slot decoding's buffers change under the sequences: a newcomer whose prompt is longer than the running columns
   * moves them right, columns nobody uses any more are dropped on the left when the capacity is reached, the capacity
   * doubles when every column is in use, and the slots double when newcomers outnumber the free ones. Every sequence
   * still samples what it samples alone.
   */
  @Test
  void slotDecodingMovesAndGrowsWithoutChangingAnyonesTokens() {
    SamplingParams p60 = SamplingParams.sample(60, 0.9).withStopTokenIds(new int[0]);
    SamplingParams p20 = SamplingParams.sample(20, 0.9).withStopTokenIds(new int[0]);
    SamplingParams p5 = SamplingParams.sample(5, 0.9).withStopTokenIds(new int[0]);
    long[] a = {11};
    long[] b = {21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    long[] c = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    long[] d = {3, 4};
    Sampler sampler = new Sampler(model, 0, false);
    long[] aAlone = sampler.generate(new long[][] {a}, p60, 1, 1).get(0).completionIds();
    long[] bAlone = sampler.generate(new long[][] {b}, p20, 1, 2).get(0).completionIds();
    long[] cAlone = sampler.generate(new long[][] {c}, p60, 1, 3).get(0).completionIds();
    List<Generation> dAlone = sampler.generate(new long[][] {d}, p5, 8, 4);
    try (ContinuousBatcher batcher = new ContinuousBatcher(model, 0, false, 64)) {
      Collect alice = new Collect();
      batcher.admit(List.of(seq(a, p60, 1, 0, alice)));
      batcher.step();
      Collect bob = new Collect();
      batcher.admit(List.of(seq(b, p20, 2, 0, bob))); // 12 prompt tokens, 2 columns in use: they move right
      assertEquals(1, batcher.slotExtent().moves());
      while (bob.reason == null) {
        batcher.step();
      }
      Collect carol = new Collect();
      List<Collect> dave = new ArrayList<>();
      List<ContinuousBatcher.Seq> joining = new ArrayList<>(List.of(seq(c, p60, 3, 0, carol)));
      for (int i = 0; i < 8; i++) {
        dave.add(new Collect());
        joining.add(seq(d, p5, 4, i, dave.get(i)));
      }
      batcher.admit(joining); // 10 sequences for 8 slots
      assertEquals(16, batcher.slotExtent().rows());
      while (batcher.step()) {
        // alice ends past column 64 with bob's columns unused (a move left); carol spans more than 64 (growth)
      }
      SlotDecoding.Extent e = batcher.slotExtent();
      assertTrue(e.moves() >= 2, e.toString());
      assertEquals(128, e.capacity(), e.toString());
      assertArrayEquals(aAlone, alice.ids());
      assertArrayEquals(bAlone, bob.ids());
      assertArrayEquals(cAlone, carol.ids());
      for (int i = 0; i < 8; i++) {
        assertArrayEquals(dAlone.get(i).completionIds(), dave.get(i).ids(), "dave " + i);
      }
      Collect eve = new Collect();
      batcher.admit(List.of(seq(a, p60, 1, 0, eve))); // an empty batch starts over at the size it needs
      assertEquals(new SlotDecoding.Extent(8, 64, e.moves()), batcher.slotExtent());
      while (batcher.step()) {
        // until she is done
      }
      assertArrayEquals(aAlone, eve.ids());
    }
  }

  /**
   * With device picking, a sequence that asks for top log-probs is picked on the host from its own logits, beside
   * rows picked on the device and with a repetition penalty: each gives what it gives alone.
   */
  @Test
  void devicePickingKeepsTopLogprobSequencesOnTheHost() {
    SamplingParams plain = SamplingParams.sample(12, 0.8).withStopTokenIds(new int[0]);
    SamplingParams penalised = SamplingParams.sample(12, 1.0).withFilters(0.9, 50, 0, 1.3)
        .withStopTokenIds(new int[0]);
    long[] p = {31, 32, 33, 34};
    long[] q = {41, 42};
    List<long[]> alone = new ArrayList<>();
    List<Collect> together = new ArrayList<>();
    for (int round = 0; round < 2; round++) {
      try (ContinuousBatcher batcher = new ContinuousBatcher(model, 0, true)) {
        Collect top = new Collect();
        Collect dev = new Collect();
        Collect pen = new Collect();
        ContinuousBatcher.Seq withTop = new ContinuousBatcher.Seq(q, plain, 5, 0, 3, -1, true, top, null);
        ContinuousBatcher.Seq onDevice = seq(p, plain, 6, 0, dev);
        ContinuousBatcher.Seq penalty = seq(q, penalised, 7, 0, pen);
        if (round == 0) { // one at a time
          for (ContinuousBatcher.Seq one : List.of(withTop, onDevice, penalty)) {
            batcher.admit(List.of(one));
            while (batcher.step()) {
              // until it is done
            }
          }
          alone.add(top.ids());
          alone.add(dev.ids());
          alone.add(pen.ids());
        } else { // all three in one batch, the top log-prob row between the others
          batcher.admit(List.of(onDevice, withTop, penalty));
          while (batcher.step()) {
            // until everyone is done
          }
          together.addAll(List.of(top, dev, pen));
          assertEquals(12, top.tops.size());
          for (Map<Long, Float> t : top.tops) {
            assertEquals(3, t.size());
          }
        }
      }
    }
    for (int i = 0; i < 3; i++) {
      assertArrayEquals(alone.get(i), together.get(i).ids(), "sequence " + i);
    }
  }

  /**
   * On a GPU (skipped elsewhere) the default picks tokens on the device, and a seeded sequence still gives the same
   * tokens alone as when it joins a running batch.
   */
  @Test
  void onAGpuTokensArePickedOnTheDevice() throws Exception {
    assumeTrue(Engine.getInstance().getGpuCount() > 0, "needs a CUDA GPU");
    try (NDManager gpuRoot = NDManager.newBaseManager(Device.gpu());
        CausalLM gpu = HfCheckpoint.open(Fixtures.model("tiny-qwen2")).loadModel(gpuRoot.newSubManager(),
            Precision.FP32)) {
      SamplingParams p = SamplingParams.sample(16, 0.9).withStopTokenIds(new int[0]);
      long[] a = {11, 12, 13};
      long[] b = {21, 22, 23, 24, 25};
      Collect alone = new Collect();
      try (ContinuousBatcher batcher = new ContinuousBatcher(gpu, 0)) {
        batcher.admit(List.of(seq(b, p, 9, 0, alone)));
        while (batcher.step()) {
          // until it is done
        }
      }
      Collect first = new Collect();
      Collect joined = new Collect();
      try (ContinuousBatcher batcher = new ContinuousBatcher(gpu, 0)) {
        batcher.admit(List.of(seq(a, p, 8, 0, first)));
        for (int i = 0; i < 5; i++) {
          batcher.step();
        }
        batcher.admit(List.of(seq(b, p, 9, 0, joined)));
        while (batcher.step()) {
          // until both are done
        }
        // with grpo4j's native library built for CUDA, the steps replay a captured graph over fixed slots
        assertEquals(CudaGraph.supported(gpu.device()), batcher.replaysGraph());
      }
      assertEquals(16, first.tokens.size());
      assertArrayEquals(alone.ids(), joined.ids());
      // the growing cache, run eagerly, samples what the slots sample
      Collect eager = new Collect();
      try (ContinuousBatcher batcher = new ContinuousBatcher(gpu, 0, true, 0)) {
        batcher.admit(List.of(seq(a, p, 8, 0, new Collect())));
        for (int i = 0; i < 5; i++) {
          batcher.step();
        }
        batcher.admit(List.of(seq(b, p, 9, 0, eager)));
        while (batcher.step()) {
          // until both are done
        }
      }
      assertArrayEquals(joined.ids(), eager.ids());
      // slots that move right, then double their capacity, under graphs captured anew for each shape
      SamplingParams p70 = SamplingParams.sample(70, 0.9).withStopTokenIds(new int[0]);
      long[] c = {21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
      Collect longAlone = new Collect();
      try (ContinuousBatcher batcher = new ContinuousBatcher(gpu, 0, true, 64)) {
        batcher.admit(List.of(seq(a, p70, 7, 0, longAlone)));
        while (batcher.step()) {
          // until it is done
        }
      }
      Collect longJoined = new Collect();
      try (ContinuousBatcher batcher = new ContinuousBatcher(gpu, 0, true, 64)) {
        batcher.admit(List.of(seq(a, p70, 7, 0, longJoined)));
        batcher.step();
        batcher.admit(List.of(seq(c, p, 9, 0, new Collect())));
        while (batcher.step()) {
          // until both are done
        }
        SlotDecoding.Extent e = batcher.slotExtent();
        assertTrue(e.moves() >= 1 && e.capacity() == 128, e.toString());
      }
      assertArrayEquals(longAlone.ids(), longJoined.ids());
    }
  }

  @Test
  void promptLogprobsAndScoringOnlySequences() {
    long[] prompt = {5, 9, 2, 44, 17};
    List<PromptLogprobs> got = new ArrayList<>();
    Collect sink = new Collect() {
      @Override
      public void prompt(PromptLogprobs scores) {
        got.add(scores);
      }
    };
    try (ContinuousBatcher batcher = new ContinuousBatcher(model, 0)) {
      batcher.admit(List.of(new ContinuousBatcher.Seq(prompt, SamplingParams.greedy(1), 0, 0, 0, 3, false, sink,
          null)));
      assertEquals(0, batcher.activeRows());
    }
    assertEquals("length", sink.reason);
    assertEquals(0, sink.tokens.size());
    PromptLogprobs p = got.get(0);
    assertTrue(Float.isNaN(p.logprobs()[0]));
    assertEquals(prompt.length, p.logprobs().length);
    for (int t = 1; t < prompt.length; t++) {
      Map<Long, Float> top = p.top().get(t);
      assertEquals(3, top.size());
      float best = top.values().iterator().next();
      assertTrue(p.logprobs()[t] <= best + 1e-6);
    }
  }
}
