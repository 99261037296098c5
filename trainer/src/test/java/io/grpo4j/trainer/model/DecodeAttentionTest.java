package io.grpo4j.trainer.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.device.NativeTorch;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The native library's decoding-step attention ({@link NativeTorch#decodeAttention}, what CPU decoding runs with
 * scripts/setup-pytorch.sh's PyTorch) against softmax(q k^T + bias) v written with libtorch's matmuls, on the
 * layouts decoding hands it: queries that are a view of the stacked q | k | v projection, keys and values that are
 * views of a cache buffer with spare room, masked positions on the left, grouped-query heads. (The model-level
 * checks, KvCacheTest and CausalLMGoldenTest's greedy ids, run again with the library in scripts/test.sh.) On the
 * CPU whatever the default device: the kernel is the CPU's (a GPU decodes with its own kernels).
 */
class DecodeAttentionTest {
  @ParameterizedTest
  @CsvSource({"1, 4, 2, 7, 16", "5, 8, 2, 33, 32", "3, 4, 4, 1, 16", "64, 4, 2, 80, 16", "2, 6, 3, 129, 8"})
  void matchesMatmulAttention(int b, int h, int hkv, int s, int d) {
    assumeTrue(NativeTorch.available(), "needs the PyTorch set up by scripts/setup-pytorch.sh");
    Random rnd = new Random(b * 1000L + s);
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      // q: heads 0..h-1 of a (B, 1, h + 2 hkv, D) projection; k, v: the first s of 2s + 3 buffer positions
      // (scaled by 1/sqrt(D) as the model's queries are, so that scores are of order one)
      NDArray proj = random(m, rnd, new Shape(b, 1, h + 2L * hkv, d)).div(Math.sqrt(d));
      NDArray q = proj.get(new NDIndex(":, :, 0:{}, :", h));
      NDArray k = random(m, rnd, new Shape(b, hkv, 2L * s + 3, d)).get(new NDIndex(":, :, 0:{}, :", s));
      NDArray v = random(m, rnd, new Shape(b, hkv, 2L * s + 3, d)).get(new NDIndex(":, :, 0:{}, :", s));
      float[] bias = new float[b * s];
      for (int r = 0; r < b; r++) {
        int padding = rnd.nextInt(s); // every row keeps at least its last key
        for (int t = 0; t < padding; t++) {
          bias[r * s + t] = AttentionBias.MASKED;
        }
      }
      NDArray biasArray = m.create(bias, new Shape(b, 1, 1, s));

      float[] got = NativeTorch.decodeAttention(q, k, v, biasArray).toFloatArray();
      float[] want = matmulAttention(q, k, v, biasArray, b, h, hkv, s, d).toFloatArray();
      assertEquals(want.length, got.length);
      double worst = 0;
      for (int i = 0; i < want.length; i++) {
        worst = Math.max(worst, Math.abs(want[i] - got[i]));
      }
      // the same softmax; only the dot products' summation order differs (a few float32 ulps of values up to ~3)
      assertTrue(worst <= 2e-6, "decode attention off by " + worst);
      if (b == 64) { // tiny-qwen2's shape at 64 rows (printed, not asserted)
        System.out.printf("decode attention, %d rows x %d heads x %d keys: %.1f us a call%n", b, h, s,
            microseconds(() -> NativeTorch.decodeAttention(q, k, v, biasArray).close()));
      }
    }
  }

  /** Mean wall time of a call over 500, after 100 untimed. */
  private static double microseconds(Runnable call) {
    for (int i = 0; i < 100; i++) {
      call.run();
    }
    long t0 = System.nanoTime();
    for (int i = 0; i < 500; i++) {
      call.run();
    }
    return (System.nanoTime() - t0) / 1e3 / 500;
  }

  @Test
  void refusesShapesItCannotRun() {
    assumeTrue(NativeTorch.available(), "needs the PyTorch set up by scripts/setup-pytorch.sh");
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      NDArray q = m.zeros(new Shape(2, 3, 4, 16)); // three query tokens a row
      NDArray k = m.zeros(new Shape(2, 2, 5, 16));
      NDArray bias = m.zeros(new Shape(2, 1, 1, 5));
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> NativeTorch.decodeAttention(q, k, k, bias));
      assertTrue(e.getMessage().contains("one query token per row"), e.getMessage());
      NDArray q1 = m.zeros(new Shape(2, 1, 3, 16)); // 3 heads over 2 kv heads
      e = assertThrows(IllegalStateException.class, () -> NativeTorch.decodeAttention(q1, k, k, bias));
      assertTrue(e.getMessage().contains("does not fit"), e.getMessage());
    }
  }

  private static NDArray random(NDManager m, Random rnd, Shape shape) {
    float[] x = new float[(int) shape.size()];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    return m.create(x, shape);
  }

  /** softmax(q k^T + bias) v with kv head h / (H / Hkv) serving head h, as (B, 1, H * D). */
  private static NDArray matmulAttention(NDArray q, NDArray k, NDArray v, NDArray bias, int b, int h, int hkv, int s,
      int d) {
    int rep = h / hkv;
    NDArray qh = q.transpose(0, 2, 1, 3); // (B, H, 1, D)
    NDArray kh = k.expandDims(2).broadcast(b, hkv, rep, s, d).reshape(b, h, s, d);
    NDArray vh = v.expandDims(2).broadcast(b, hkv, rep, s, d).reshape(b, h, s, d);
    NDArray probs = qh.matMul(kh.transpose(0, 1, 3, 2)).add(bias).softmax(-1); // (B, H, 1, S)
    return probs.matMul(vh).transpose(0, 2, 1, 3).reshape(b, 1, (long) h * d);
  }
}
