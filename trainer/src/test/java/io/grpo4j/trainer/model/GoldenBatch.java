package io.grpo4j.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.Fixtures;
import java.util.Map;

/**
 * A fixture's left-padded batch (batch_input_ids, batch_attention_mask) and the logits transformers gave for it
 * (batch_logits), with the forward the golden tests run on it and the comparison on real (unpadded) positions.
 */
record GoldenBatch(int rows, int length, long[] ids, int[][] mask, float[] want) {
  static GoldenBatch of(String model) {
    Map<String, Tensor> exp = Fixtures.expected(model);
    Tensor ids = exp.get("batch_input_ids");
    int b = (int) ids.shape()[0];
    int l = (int) ids.shape()[1];
    long[] flat = exp.get("batch_attention_mask").toLongs();
    int[][] mask = new int[b][l];
    for (int i = 0; i < b; i++) {
      for (int s = 0; s < l; s++) {
        mask[i][s] = (int) flat[i * l + s];
      }
    }
    return new GoldenBatch(b, l, ids.toLongs(), mask, exp.get("batch_logits").toFloats());
  }

  /** The model's logits (B, T, V) on the batch: positions from the mask, the padding masked out. */
  NDArray forward(CausalLM model, NDManager step) {
    long[][] pos = AttentionBias.positions(mask);
    long[] flat = new long[rows * length];
    for (int i = 0; i < rows; i++) {
      System.arraycopy(pos[i], 0, flat, i * length, length);
    }
    return model.forward(step.create(ids, new Shape(rows, length)), step.create(flat, new Shape(rows, length)),
        AttentionBias.of(step, mask, length));
  }

  /** The mask as float32 (B, T), for losses over real positions. */
  NDArray maskArray(NDManager step) {
    float[] m = new float[rows * length];
    for (int i = 0; i < rows; i++) {
      for (int s = 0; s < length; s++) {
        m[i * length + s] = mask[i][s];
      }
    }
    return step.create(m, new Shape(rows, length));
  }

  /** |want - got| over real positions: max, sum and count. */
  record Diff(double max, double sum, long count) {
    double mean() {
      return count == 0 ? 0 : sum / count;
    }
  }

  Diff diff(float[] got, int vocab) {
    double max = 0;
    double sum = 0;
    long n = 0;
    for (int i = 0; i < rows; i++) {
      for (int s = 0; s < length; s++) {
        if (mask[i][s] == 1) {
          for (int j = 0; j < vocab; j++) {
            int idx = (i * length + s) * vocab + j;
            double d = Math.abs(want[idx] - got[idx]);
            max = Math.max(max, d);
            sum += d;
            n++;
          }
        }
      }
    }
    return new Diff(max, sum, n);
  }
}
