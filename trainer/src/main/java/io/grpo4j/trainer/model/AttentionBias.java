package io.grpo4j.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Additive attention bias for left-padded batches: 0 where query t may attend key s (s is a real token and not in
 * t's future), a large negative number elsewhere. transformers uses the dtype's minimum instead of -inf so that a
 * padding query row, which may attend nothing, softmaxes to a uniform row instead of NaN; so do we, with bfloat16's
 * minimum (exact in float32 too), so that the bias keeps its value when a bf16 kernel takes it. Added to scores of
 * order one it swamps them exactly like float32's minimum does, so float32 results are the same.
 */
public final class AttentionBias {
  public static final float MASKED = -3.3895314e38f; // -(2 - 2^-7) * 2^127, bfloat16's lowest

  private AttentionBias() {}

  /**
   * Built on the model's device from the (B, T_keys) mask: only B * T_keys numbers cross to the device, not the
   * (B, T, T_keys) bias (37 MB for 64 rows of 384 tokens).
   *
   * @param keyMask (B, T_past + T): 1 for real tokens, 0 for padding, for every key position so far
   * @param queries T, the number of new positions; they are the last T key positions
   * @return (B, 1, T, T_past + T) float32 in {@code manager}
   */
  public static NDArray of(NDManager manager, int[][] keyMask, int queries) {
    int b = keyMask.length;
    int tk = keyMask[0].length;
    float[] keys = new float[b * tk];
    for (int i = 0; i < b; i++) {
      for (int s = 0; s < tk; s++) {
        keys[i * tk + s] = keyMask[i][s];
      }
    }
    try (NDManager tmp = manager.newSubManager()) {
      NDArray real = tmp.create(keys, new Shape(b, 1, 1, tk)).gt(0f); // (B, 1, 1, Tk)
      NDArray allowed = real.logicalAnd(causal(tmp, queries, tk)); // (B, 1, T, Tk)
      return additive(manager, allowed);
    }
  }

  /** The causal bias alone, (1, 1, T, T_keys): for batches without padding. */
  public static NDArray causalOnly(NDManager manager, int queries, int keys) {
    try (NDManager tmp = manager.newSubManager()) {
      return additive(manager, causal(tmp, queries, keys));
    }
  }

  /** 0 where {@code allowed}, MASKED elsewhere, as float32 in {@code manager}. */
  private static NDArray additive(NDManager manager, NDArray allowed) {
    NDArray blocked = allowed.logicalNot().toType(DataType.FLOAT32, false);
    NDArray bias = blocked.mul(allowed.getManager().create(MASKED));
    bias.attach(manager);
    return bias;
  }

  /** (1, 1, T, T_keys) bool: query t (the last T of T_keys positions) may see key s <= its own position. */
  private static NDArray causal(NDManager m, int queries, int keys) {
    NDArray key = m.arange(0, keys, 1, DataType.INT64).reshape(1, 1, 1, keys);
    NDArray query = m.arange(keys - queries, keys, 1, DataType.INT64).reshape(1, 1, queries, 1);
    return key.lte(query);
  }

  /** Whether any row starts with padding (a batch without it needs only the causal mask). */
  public static boolean leftPadded(int[][] mask, int promptLength) {
    for (int[] row : mask) {
      for (int s = 0; s < promptLength; s++) {
        if (row[s] == 0) {
          return true;
        }
      }
    }
    return false;
  }

  /** Same, uploaded through a reusable staging slot (decoding loops). */
  public static NDArray of(NDManager manager, int[][] keyMask, int queries, HostStaging staging, int slot) {
    return staging.floats(manager, slot, values(keyMask, queries), shape(keyMask, queries));
  }

  private static Shape shape(int[][] keyMask, int queries) {
    return new Shape(keyMask.length, 1, queries, keyMask[0].length);
  }

  private static float[] values(int[][] keyMask, int queries) {
    int b = keyMask.length;
    int tk = keyMask[0].length;
    int past = tk - queries;
    float[] bias = new float[b * queries * tk];
    for (int i = 0; i < b; i++) {
      for (int t = 0; t < queries; t++) {
        int base = (i * queries + t) * tk;
        int absolute = past + t;
        for (int s = 0; s < tk; s++) {
          boolean allowed = s <= absolute && keyMask[i][s] != 0;
          bias[base + s] = allowed ? 0f : MASKED;
        }
      }
    }
    return bias;
  }

  /** Positions from a mask, {@code cumsum(mask) - 1} clamped at 0, as transformers computes them. */
  public static long[][] positions(int[][] mask) {
    long[][] pos = new long[mask.length][];
    for (int i = 0; i < mask.length; i++) {
      pos[i] = new long[mask[i].length];
      long c = 0;
      for (int s = 0; s < mask[i].length; s++) {
        c += mask[i][s];
        pos[i][s] = Math.max(0, c - 1);
      }
    }
    return pos;
  }
}
