package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Row shards run at once must be the same update as the whole minibatch in one forward/backward: same loss, KL,
 * clip fractions, entropy, sampler mismatch, the same gradient before the optimizer and, after AdamW, the same
 * weights, for every loss type, with old log-probs (iterations 2), the reference (beta > 0), truncated IS, ragged
 * completions and minibatches.
 *
 * <p>The bounds follow from the arithmetic, so they hold on any fixture set and on CUDA: sharding only changes the
 * order in which float32 gradients are summed (relative rounding ~1e-7 per add), so the gradient must agree to 1e-5
 * relative. AdamW then divides each element by the root of its own second moment, so where a gradient element is
 * near zero a rounding-sized difference can change that element's step by up to 2 lr (a sign flip); weights after
 * U updates may differ by at most 2 lr U anywhere, and by no more than 1e-6 in all but a thousandth of them.
 */
class ParallelShardsTest {
  static final int ROWS = 10;
  static final double LR = 1e-4;
  static final int UPDATES = 4; // two runs of two iterations

  @Test
  void shardedUpdateEqualsTheUnshardedOne() throws Exception {
    SplittableRandom rnd = new SplittableRandom(7);
    long[][] prompts = new long[ROWS][];
    long[][] completions = new long[ROWS][];
    double[] adv = new double[ROWS];
    for (int i = 0; i < ROWS; i++) {
      prompts[i] = rnd.longs(3 + rnd.nextInt(6), 3, 384).toArray(); // left padding differs per row
      completions[i] = rnd.longs(1 + rnd.nextInt(12), 3, 384).toArray(); // and so do completion lengths
      adv[i] = rnd.nextDouble() * 2 - 1;
    }
    CompletionBatch batch = new CompletionBatch(prompts, completions, 0);
    float[] samplerLogps = new float[ROWS * batch.completionLength()];
    for (int i = 0; i < samplerLogps.length; i++) {
      samplerLogps[i] = (float) (-6 + rnd.nextDouble());
    }
    PolicyUpdate.SamplerCorrection sampler = new PolicyUpdate.SamplerCorrection(samplerLogps, true, 3.0);
    for (String type : new String[] {"grpo", "bnpo", "dr_grpo", "dapo"}) {
      for (int minibatch : new int[] {0, 4}) {
        Result one = update(batch, adv, sampler, type, minibatch, 1);
        for (int shards : new int[] {2, 3}) {
          Result many = update(batch, adv, sampler, type, minibatch, shards);
          String what = type + ", minibatch " + minibatch + ", " + shards + " shards";
          assertEquals(one.stats.loss(), many.stats.loss(), 1e-5 * Math.max(1, Math.abs(one.stats.loss())),
              what + ": loss");
          assertEquals(one.stats.kl(), many.stats.kl(), 1e-5 * Math.max(1, one.stats.kl()), what + ": kl");
          assertEquals(one.stats.entropy(), many.stats.entropy(), 1e-5 * one.stats.entropy(), what + ": entropy");
          assertEquals(one.stats.clipLow(), many.stats.clipLow(), 1e-6, what + ": clip low");
          assertEquals(one.stats.clipHigh(), many.stats.clipHigh(), 1e-6, what + ": clip high");
          assertEquals(one.stats.gradNorm(), many.stats.gradNorm(), 1e-5 * one.stats.gradNorm(), what + ": grad norm");
          assertEquals(one.stats.mismatch().logpDiffMean(), many.stats.mismatch().logpDiffMean(), 1e-6, what);
          assertEquals(one.stats.mismatch().ratioMax(), many.stats.mismatch().ratioMax(),
              1e-5 * one.stats.mismatch().ratioMax(), what);
          double worst = 0;
          double moved = 0;
          long off = 0;
          long total = 0;
          for (var e : one.weights.entrySet()) {
            float[] a = e.getValue();
            float[] b = many.weights.get(e.getKey());
            float[] start = one.initial.get(e.getKey());
            for (int i = 0; i < a.length; i++) {
              double d = Math.abs(a[i] - b[i]);
              worst = Math.max(worst, d);
              off += d > 1e-6 ? 1 : 0;
              moved = Math.max(moved, Math.abs(a[i] - start[i]));
            }
            total += a.length;
          }
          System.out.printf("%s: loss %.6f kl %.6f clip %.4f/%.4f, weights moved %.2e, differ by %.2e (%d of %d"
              + " by more than 1e-6)%n", what, many.stats.loss(), many.stats.kl(), many.stats.clipLow(),
              many.stats.clipHigh(), moved, worst, off, total);
          assertTrue(moved > 1e-4, what + ": the update moved the weights by " + moved);
          assertTrue(worst <= 2 * LR * UPDATES, what + ": weights differ by " + worst + ", more than 2 lr x updates");
          assertTrue(off <= total / 1000, what + ": " + off + " of " + total + " weights differ by more than 1e-6");
          assertSameGradient(batch, adv, sampler, type, minibatch, shards, what);
        }
      }
    }
  }

  @Test
  void shardedUpdatesAreReproducibleBitForBit() throws Exception {
    SplittableRandom rnd = new SplittableRandom(11);
    long[][] prompts = new long[ROWS][];
    long[][] completions = new long[ROWS][];
    double[] adv = new double[ROWS];
    for (int i = 0; i < ROWS; i++) {
      prompts[i] = rnd.longs(4, 3, 384).toArray();
      completions[i] = rnd.longs(2 + rnd.nextInt(8), 3, 384).toArray();
      adv[i] = rnd.nextDouble() * 2 - 1;
    }
    CompletionBatch batch = new CompletionBatch(prompts, completions, 0);
    // 3 shards over minibatches of 6 rows: gradients added in arrival order would differ run to run
    Result first = update(batch, adv, null, "dapo", 6, 3);
    for (int run = 0; run < 3; run++) {
      Result again = update(batch, adv, null, "dapo", 6, 3);
      for (var e : first.weights.entrySet()) {
        org.junit.jupiter.api.Assertions.assertArrayEquals(e.getValue(), again.weights.get(e.getKey()), 0f,
            e.getKey() + " after run " + run);
      }
    }
  }

  record Result(PolicyUpdate.Stats stats, Map<String, float[]> initial, Map<String, float[]> weights) {}

  /**
   * The gradient itself, sharded vs not: one update at lr 0 leaves AdamW's first moment at (1 - beta1) g, read
   * back exactly. Compared per tensor to 1e-5 of its largest element.
   */
  static void assertSameGradient(CompletionBatch batch, double[] adv, PolicyUpdate.SamplerCorrection sampler,
      String type, int minibatch, int shards, String what) throws Exception {
    Map<String, float[]> g1 = firstGradient(batch, adv, sampler, type, minibatch, 1);
    Map<String, float[]> gn = firstGradient(batch, adv, sampler, type, minibatch, shards);
    for (var e : g1.entrySet()) {
      float[] a = e.getValue();
      float[] b = gn.get(e.getKey());
      double max = 0;
      double worst = 0;
      for (int i = 0; i < a.length; i++) {
        max = Math.max(max, Math.abs(a[i]));
        worst = Math.max(worst, Math.abs(a[i] - b[i]));
      }
      assertTrue(worst <= 1e-5 * max, what + ": gradient of " + e.getKey() + " differs by " + worst + " (largest "
          + max + ")");
    }
  }

  static Map<String, float[]> firstGradient(CompletionBatch batch, double[] adv,
      PolicyUpdate.SamplerCorrection sampler, String type, int minibatch, int shards) throws Exception {
    try (NDManager root = NDManager.newBaseManager();
        CausalLM policy = HfCheckpoint.load(Fixtures.model("tiny-qwen2"), root.newSubManager());
        CausalLM reference = HfCheckpoint.load(Fixtures.model("tiny-qwen2"), root.newSubManager())) {
      policy.setTrainable(true);
      AdamW adam = new AdamW(policy, root.newSubManager(), 0.9, 0.999, 1e-8, 0.0);
      GrpoLoss.Settings s = new GrpoLoss.Settings(type, 0.04, 0.2, 0.28, "token", 16, true);
      PolicyUpdate.run(new PolicyUpdate.Inputs(policy, reference, adam, batch, adv), new PolicyUpdate.Settings(s, 0.9,
          1, minibatch, 0.0, 0.0, sampler, shards, io.grpo4j.trainer.distributed.ProcessGroup.single()));
      return adam.firstMoments();
    }
  }

  static Result update(CompletionBatch batch, double[] adv, PolicyUpdate.SamplerCorrection sampler, String type,
      int minibatch, int shards) throws Exception {
    try (NDManager root = NDManager.newBaseManager();
        CausalLM policy = HfCheckpoint.load(Fixtures.model("tiny-qwen2"), root.newSubManager());
        CausalLM reference = HfCheckpoint.load(Fixtures.model("tiny-qwen2"), root.newSubManager())) {
      policy.setTrainable(true);
      Map<String, float[]> initial = snapshot(policy);
      AdamW adam = new AdamW(policy, root.newSubManager(), 0.9, 0.999, 1e-8, 0.0);
      GrpoLoss.Settings s = new GrpoLoss.Settings(type, 0.04, 0.2, 0.28, "token", 16, true);
      // two steps, so that the second sees a policy that differs from the reference (non-zero KL, clipping)
      PolicyUpdate.Settings settings = new PolicyUpdate.Settings(s, 0.9, 2, minibatch, 1.0, LR, sampler, shards,
          io.grpo4j.trainer.distributed.ProcessGroup.single());
      PolicyUpdate.run(new PolicyUpdate.Inputs(policy, reference, adam, batch, adv), settings);
      PolicyUpdate.Stats stats = PolicyUpdate.run(new PolicyUpdate.Inputs(policy, reference, adam, batch, adv),
          settings);
      return new Result(stats, initial, snapshot(policy));
    }
  }

  static Map<String, float[]> snapshot(CausalLM model) {
    Map<String, float[]> out = new java.util.LinkedHashMap<>();
    for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
      out.put(e.getKey(), e.getValue().toFloatArray());
    }
    return out;
  }
}
