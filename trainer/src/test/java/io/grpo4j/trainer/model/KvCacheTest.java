package io.grpo4j.trainer.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Decoding token by token with the KV cache gives the logits of one full forward over the same tokens. */
class KvCacheTest {
  @ParameterizedTest
  @ValueSource(strings = {"tiny-qwen2", "tiny-llama", "tiny-qwen3"})
  void incrementalDecodingMatchesAFullForward(String name) throws Exception {
    // a left-padded batch of two rows: 3 pads + 9 tokens, and 12 tokens
    long[][] rows = {{0, 0, 0, 1, 91, 89, 267, 205, 93, 383, 318, 275}, {263, 75, 317, 344, 227, 368, 3, 305, 278,
        298, 279, 275}};
    int[][] mask = {{0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
    int b = 2;
    int t = 12;
    int prefix = 6;
    try (NDManager root = NDManager.newBaseManager();
        CausalLM model = HfCheckpoint.load(Fixtures.model(name), root.newSubManager());
        NDManager m = root.newSubManager()) {
      long[] flat = new long[b * t];
      long[] pos = new long[b * t];
      long[][] p = AttentionBias.positions(mask);
      for (int i = 0; i < b; i++) {
        System.arraycopy(rows[i], 0, flat, i * t, t);
        System.arraycopy(p[i], 0, pos, i * t, t);
      }
      float[] full = model.forward(m.create(flat, new Shape(b, t)), m.create(pos, new Shape(b, t)),
          AttentionBias.of(m, mask, t)).toFloatArray();
      int v = model.config().vocabSize();
      KvCache cache = new KvCache(model.config().numHiddenLayers(), m);
      double worst = 0;
      double largest = 0;
      for (float x : full) {
        largest = Math.max(largest, Math.abs(x));
      }
      for (int s = 0; s < t; s = s == 0 ? prefix : s + 1) {
        int len = s == 0 ? prefix : 1; // prefill the first tokens, then one at a time
        long[] ids = new long[b * len];
        long[] ps = new long[b * len];
        int[][] keyMask = new int[b][s + len];
        for (int i = 0; i < b; i++) {
          for (int k = 0; k < len; k++) {
            ids[i * len + k] = rows[i][s + k];
            ps[i * len + k] = p[i][s + k];
          }
          System.arraycopy(mask[i], 0, keyMask[i], 0, s + len);
        }
        NDArray h = model.hidden(m.create(ids, new Shape(b, len)), m.create(ps, new Shape(b, len)),
            AttentionBias.of(m, keyMask, len), cache);
        float[] step = model.logits(h).toFloatArray(); // (b, len, v)
        for (int i = 0; i < b; i++) {
          for (int k = 0; k < len; k++) {
            if (mask[i][s + k] == 0) {
              continue;
            }
            for (int j = 0; j < v; j++) {
              worst = Math.max(worst, Math.abs(step[(i * len + k) * v + j] - full[(i * t + s + k) * v + j]));
            }
          }
        }
      }
      System.out.printf("%s: KV-cache vs full forward max |diff| %.3g (largest |logit| %.3g)%n", name, worst, largest);
      // 1e-5 on the logits' own scale: different GEMM shapes (1 row vs 12) sum in a different order, which float32
      // shows as a few ulps (measured: 1.1e-5 absolute on logits up to 5.6 for tiny-qwen2, 2e-6 relative)
      assertTrue(worst <= 1e-5 * Math.max(1, largest), name + ": KV-cache logits differ from the full forward by "
          + worst);
    }
  }

  /**
   * The cache writes into buffers with spare room; every edit the batchers make (rows dropped, repeated or added,
   * positions trimmed or padded on the left) must leave exactly what concatenating arrays would hold.
   */
  @Test
  void bufferedCacheHoldsWhatConcatenationWould() {
    try (NDManager m = NDManager.newBaseManager()) {
      KvCache cache = new KvCache(2, m);
      NDArray[][] ref = new NDArray[2][2]; // per layer: the keys and values a plain concatenation gives
      java.util.Random rnd = new java.util.Random(7);
      java.util.function.BiFunction<Long, Integer, NDArray> fresh = (rows, t) -> {
        float[] x = new float[(int) (rows * 2 * t * 3)];
        for (int i = 0; i < x.length; i++) {
          x[i] = rnd.nextInt(1000);
        }
        return m.create(x, new Shape(rows, 2, t, 3));
      };
      Runnable check = () -> {
        for (int l = 0; l < 2; l++) {
          assertArrayEquals(ref[l][0].toFloatArray(), cache.keys(l).toFloatArray(), "layer " + l + " keys");
          assertArrayEquals(ref[l][1].toFloatArray(), cache.values(l).toFloatArray(), "layer " + l + " values");
        }
        assertEquals(ref[0][0].getShape().get(2), cache.length());
      };
      java.util.function.Consumer<Integer> step = t -> {
        for (int l = 0; l < 2; l++) {
          long rows = ref[l][0] == null ? 3 : ref[l][0].getShape().get(0);
          NDArray k = fresh.apply(rows, t);
          NDArray v = fresh.apply(rows, t);
          ref[l][0] = ref[l][0] == null ? k.duplicate() : ref[l][0].concat(k, 2);
          ref[l][1] = ref[l][1] == null ? v.duplicate() : ref[l][1].concat(v, 2);
          NDArray[] kv = cache.append(l, k, v);
          assertArrayEquals(ref[l][0].toFloatArray(), kv[0].toFloatArray(), "layer " + l + " keys returned");
          assertArrayEquals(ref[l][1].toFloatArray(), kv[1].toFloatArray(), "layer " + l + " values returned");
        }
        check.run();
      };
      java.util.function.UnaryOperator<java.util.function.UnaryOperator<NDArray>> edit = f -> {
        for (int l = 0; l < 2; l++) {
          ref[l][0] = f.apply(ref[l][0]);
          ref[l][1] = f.apply(ref[l][1]);
        }
        return f;
      };
      step.accept(5); // a prefill, then decoding steps past two growths
      for (int i = 0; i < 12; i++) {
        step.accept(1);
      }
      long[] keep = {2, 0};
      cache.selectRows(keep);
      edit.apply(a -> a.get(m.create(keep)));
      check.run();
      step.accept(1); // written in the room the selection kept
      cache.trimLeft(4);
      edit.apply(a -> a.get(":, :, 4:"));
      check.run();
      step.accept(1);
      cache.repeatRows(2);
      edit.apply(a -> a.repeat(0, 2));
      check.run();
      // rows of a shorter cache, then of a longer one: the shorter side is padded with zeros on the left
      for (int extra : new int[] {-3, 2}) {
        KvCache other = new KvCache(2, m);
        for (int l = 0; l < 2; l++) {
          long len = ref[l][0].getShape().get(2);
          long rows = ref[l][0].getShape().get(0);
          NDArray k = fresh.apply(1L, (int) len + extra);
          NDArray v = fresh.apply(1L, (int) len + extra);
          ref[l][0] = extra < 0 ? ref[l][0].concat(m.zeros(new Shape(1, 2, -extra, 3)).concat(k, 2), 0)
              : m.zeros(new Shape(rows, 2, extra, 3)).concat(ref[l][0], 2).concat(k, 0);
          ref[l][1] = extra < 0 ? ref[l][1].concat(m.zeros(new Shape(1, 2, -extra, 3)).concat(v, 2), 0)
              : m.zeros(new Shape(rows, 2, extra, 3)).concat(ref[l][1], 2).concat(v, 0);
          other.append(l, k, v);
        }
        cache.appendRows(other);
        other.close();
        check.run();
        step.accept(1);
      }
      step.accept(1);
      step.accept(1);
      // continuous batching: rows 1 and 3 leave, the last row takes row 1's place (only it is copied), and the
      // rows left behind are spare rows that a shorter newcomer is written into
      long rows = ref[0][0].getShape().get(0);
      long[] swap = {0, rows - 1, 2};
      cache.selectRows(swap);
      edit.apply(a -> a.get(m.create(swap)));
      check.run();
      step.accept(1);
      KvCache other = new KvCache(2, m);
      for (int l = 0; l < 2; l++) {
        long len = ref[l][0].getShape().get(2);
        NDArray k = fresh.apply(2L, (int) len - 2);
        NDArray v = fresh.apply(2L, (int) len - 2);
        ref[l][0] = ref[l][0].concat(m.zeros(new Shape(2, 2, 2, 3)).concat(k, 2), 0);
        ref[l][1] = ref[l][1].concat(m.zeros(new Shape(2, 2, 2, 3)).concat(v, 2), 0);
        other.append(l, k, v);
      }
      cache.appendRows(other);
      other.close();
      check.run();
      assertEquals(5, cache.rows());
      step.accept(1);
      step.accept(1);
      cache.close();
    }
  }
}
