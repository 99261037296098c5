package io.grpo4j.trainer.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.generation.SamplingParams;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Logits and greedy generations of the three fixture architectures against Hugging Face transformers. */
class CausalLMGoldenTest {

  @ParameterizedTest
  @ValueSource(strings = {"tiny-qwen2", "tiny-llama", "tiny-qwen3"})
  void singleLogitsMatchTransformers(String name) throws Exception {
    Map<String, Tensor> exp = Fixtures.expected(name);
    Tensor want = exp.get("single_logits"); // (T, V)
    int t = (int) want.shape()[0];
    long[] ids = firstRealRow(exp, t);
    try (NDManager root = NDManager.newBaseManager();
        CausalLM model = HfCheckpoint.load(Fixtures.model(name), root.newSubManager());
        NDManager step = root.newSubManager()) {
      int[][] mask = {ones(t)};
      NDArray logits = model.forward(
          step.create(ids, new Shape(1, t)),
          step.create(AttentionBias.positions(mask)[0], new Shape(1, t)),
          AttentionBias.of(step, mask, t));
      assertClose(want.toFloats(), logits.toFloatArray(), 1e-4, name + " single_logits");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny-qwen2", "tiny-llama", "tiny-qwen3"})
  void batchLogitsMatchOnRealPositions(String name) throws Exception {
    GoldenBatch batch = GoldenBatch.of(name);
    try (NDManager root = NDManager.newBaseManager();
        CausalLM model = HfCheckpoint.load(Fixtures.model(name), root.newSubManager());
        NDManager step = root.newSubManager()) {
      float[] got = batch.forward(model, step).toFloatArray();
      int v = model.config().vocabSize();
      int compared = 0;
      for (int i = 0; i < batch.rows(); i++) {
        for (int s = 0; s < batch.length(); s++) {
          if (batch.mask()[i][s] == 1) {
            for (int j = 0; j < v; j++) {
              int idx = (i * batch.length() + s) * v + j;
              assertEquals(batch.want()[idx], got[idx], 1e-4, name + " batch_logits[" + i + "," + s + "," + j + "]");
              compared++;
            }
          }
        }
      }
      assertTrue(compared > 0);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny-qwen2", "tiny-llama", "tiny-qwen3"})
  void greedyIdsMatchWithKvCache(String name) throws Exception {
    Map<String, Tensor> exp = Fixtures.expected(name);
    Tensor idsT = exp.get("batch_input_ids");
    int b = (int) idsT.shape()[0];
    int l = (int) idsT.shape()[1];
    long[] ids = idsT.toLongs();
    long[] maskFlat = exp.get("batch_attention_mask").toLongs();
    Tensor greedy = exp.get("greedy_ids");
    int n = (int) greedy.shape()[1];
    long[][] prompts = new long[b][];
    for (int i = 0; i < b; i++) {
      int real = 0;
      for (int s = 0; s < l; s++) {
        real += (int) maskFlat[i * l + s];
      }
      prompts[i] = new long[real];
      System.arraycopy(ids, i * l + (l - real), prompts[i], 0, real);
    }
    try (NDManager root = NDManager.newBaseManager();
        CausalLM model = HfCheckpoint.load(Fixtures.model(name), root.newSubManager())) {
      SamplingParams p = SamplingParams.greedy(n).withStopTokenIds(new int[0]);
      var out = new Sampler(model, 0).generate(prompts, p, 1);
      long[] want = greedy.toLongs();
      for (int i = 0; i < b; i++) {
        long[] row = new long[n];
        System.arraycopy(want, i * n, row, 0, n);
        assertArrayEquals(row, out.get(i).completionIds(), name + " greedy_ids row " + i);
      }
    }
  }

  static long[] firstRealRow(Map<String, Tensor> exp, int t) throws java.io.IOException {
    // single_logits is cases.json prompt 0 without padding
    var cases = new com.fasterxml.jackson.databind.ObjectMapper()
        .readTree(Fixtures.root().resolve("cases.json").toFile());
    var ids = cases.get("prompt_ids").get(0);
    assertEquals(t, ids.size(), "single_logits rows vs cases.json prompt 0 length");
    long[] row = new long[t];
    for (int i = 0; i < t; i++) {
      row[i] = ids.get(i).asLong();
    }
    return row;
  }

  static int[] ones(int t) {
    int[] m = new int[t];
    java.util.Arrays.fill(m, 1);
    return m;
  }

  static void assertClose(float[] want, float[] got, double tol, String what) {
    assertEquals(want.length, got.length, what + " length");
    double worst = 0;
    int at = -1;
    for (int i = 0; i < want.length; i++) {
      double d = Math.abs(want[i] - got[i]);
      if (!(d <= worst)) {
        worst = d;
        at = i;
      }
    }
    assertTrue(worst <= tol, what + ": max abs diff " + worst + " at " + at + " exceeds " + tol);
  }
}
