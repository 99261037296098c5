package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.NoGrad;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Completion log-probs and entropies against the same numbers worked out in doubles from the full logits of an
 * independent forward (every position through the LM head), with left-padded prompts and ragged completions.
 */
class PolicyLogProbsTest {
  @Test
  void logProbsAndEntropyMatchTheFullLogits() throws Exception {
    double temperature = 0.7;
    SplittableRandom rnd = new SplittableRandom(3);
    int rows = 5;
    long[][] prompts = new long[rows][];
    long[][] completions = new long[rows][];
    for (int i = 0; i < rows; i++) {
      prompts[i] = rnd.longs(2 + rnd.nextInt(5), 3, 384).toArray();
      completions[i] = rnd.longs(1 + rnd.nextInt(7), 3, 384).toArray();
    }
    CompletionBatch b = new CompletionBatch(prompts, completions, 0);
    int p = b.promptLength();
    int c = b.completionLength();
    int t = p + c;
    try (NDManager root = NDManager.newBaseManager();
        CausalLM model = HfCheckpoint.load(Fixtures.model("tiny-qwen2"), root.newSubManager());
        NoGrad g = NoGrad.enter(); NDManager m = root.newSubManager()) {
      int v = model.config().vocabSize();
      float[] logits = model.forward(b.inputIds(m), b.positions(m), b.attentionBias(m)).toFloatArray(); // (N, T, V)
      PolicyLogProbs.Result r = PolicyLogProbs.compute(model, m, b, temperature, true);
      float[] logps = r.logps().toFloatArray();
      float[] ent = r.entropy().toFloatArray();
      NDArray ids = b.completionIds(m);
      long[] target = ids.toLongArray();
      double worstLogp = 0;
      double worstEnt = 0;
      for (int i = 0; i < rows; i++) {
        for (int k = 0; k < c; k++) {
          int base = (i * t + p - 1 + k) * v; // position p-1+k predicts completion token k
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j < v; j++) {
            max = Math.max(max, logits[base + j] / temperature);
          }
          double z = 0;
          for (int j = 0; j < v; j++) {
            z += Math.exp(logits[base + j] / temperature - max);
          }
          double logZ = max + Math.log(z);
          double h = 0;
          for (int j = 0; j < v; j++) {
            double lp = logits[base + j] / temperature - logZ;
            h -= Math.exp(lp) * lp;
          }
          double expected = logits[base + (int) target[i * c + k]] / temperature - logZ;
          worstLogp = Math.max(worstLogp, Math.abs(expected - logps[i * c + k]));
          worstEnt = Math.max(worstEnt, Math.abs(h - ent[i * c + k]));
        }
      }
      assertEquals(0, worstLogp, 2e-5, "log-probs");
      assertEquals(0, worstEnt, 2e-5, "entropy");
      for (float e : ent) { // nats, between a point mass and the uniform distribution
        org.junit.jupiter.api.Assertions.assertTrue(e > 0 && e <= Math.log(v) + 1e-4, "entropy " + e);
      }
      org.junit.jupiter.api.Assertions.assertNull(r.entropyAt(), "small steps: the entropy of every position");
      // a large step (here: a budget of 7 positions' logits) takes the entropy at every k-th position: the same values
      PolicyLogProbs.Result strided = PolicyLogProbs.compute(model, m, b, temperature, true, 7L * v);
      int stride = (rows * c + 6) / 7;
      float[] at = strided.entropyAt().toFloatArray();
      float[] sub = strided.entropy().toFloatArray();
      for (int i = 0; i < rows * c; i++) {
        assertEquals(i % stride == 0 ? 1f : 0f, at[i], "entropyAt[" + i + "]");
        assertEquals(i % stride == 0 ? ent[i] : 0f, sub[i], 1e-6, "strided entropy[" + i + "]");
      }
    }
  }
}
