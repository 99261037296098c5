package io.grpo4j.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Keys and values of every layer for the tokens seen so far, so that decoding one more token costs one position,
 * not the whole sequence. Arrays live in the manager of the decoding step that owns the cache.
 */
public final class KvCache implements KvStore, AutoCloseable {
  private final NDArray[] keys; // per layer: (B, kv_heads, T_past, head_dim)
  private final NDArray[] values; // per layer: (B, kv_heads, T_past, head_dim)
  private final NDManager owner; // where the cache's arrays live between decoding steps
  private int length; // T_past

  public KvCache(int layers, NDManager owner) {
    keys = new NDArray[layers];
    values = new NDArray[layers];
    this.owner = owner;
  }

  /** Layer {@code layer}'s keys so far, (B, kv_heads, T_past, head_dim); owned by the cache. */
  public NDArray keys(int layer) {
    return keys[layer];
  }

  /** Layer {@code layer}'s values so far; owned by the cache. */
  public NDArray values(int layer) {
    return values[layer];
  }

  public int length() {
    return length;
  }

  /** Appends this step's keys/values of {@code layer} and returns the full (past + new) ones. */
  @Override
  public NDArray[] append(int layer, NDArray k, NDArray v) {
    NDArray fullK = keys[layer] == null ? k : keys[layer].concat(k, 2);
    NDArray fullV = values[layer] == null ? v : values[layer].concat(v, 2);
    if (keys[layer] != null && keys[layer] != k) {
      keys[layer].close();
      values[layer].close();
      k.close();
      v.close();
    }
    // the new arrays were made in the step's manager; keep them alive past the step
    fullK.attach(owner);
    fullV.attach(owner);
    keys[layer] = fullK;
    values[layer] = fullV;
    if (layer == keys.length - 1) {
      length = (int) fullK.getShape().get(2);
    }
    return new NDArray[] {fullK, fullV};
  }

  /**
   * Repeats every row {@code times} times in place (row i becomes rows i*times .. i*times+times-1): a group of G
   * completions shares its prompt's prefill instead of recomputing it G times.
   */
  public void repeatRows(int times) {
    for (int l = 0; l < keys.length; l++) {
      if (keys[l] != null) {
        NDArray k = keys[l].repeat(0, times);
        NDArray v = values[l].repeat(0, times);
        keys[l].close();
        values[l].close();
        keys[l] = k;
        values[l] = v;
      }
    }
  }

  /** Adds {@code n} positions on the left of every row (zeros; the attention mask must hide them). */
  public void padLeft(int n) {
    for (int l = 0; l < keys.length; l++) {
      if (keys[l] != null) {
        keys[l] = padded(keys[l], n);
        values[l] = padded(values[l], n);
      }
    }
    length += n;
  }

  private NDArray padded(NDArray a, int n) {
    ai.djl.ndarray.types.Shape s = a.getShape();
    try (NDArray z = owner.zeros(new ai.djl.ndarray.types.Shape(s.get(0), s.get(1), n, s.get(3)), a.getDataType())) {
      NDArray out = z.concat(a, 2);
      out.attach(owner);
      a.close();
      return out;
    }
  }

  /** Appends another cache's rows (same length and layers) below this one's. */
  public void appendRows(KvCache other) {
    replaceEach(l -> keys[l].concat(other.keys[l], 0), l -> values[l].concat(other.values[l], 0));
  }

  /** Drops the first {@code n} positions of every row (no row attends to them any more). */
  public void trimLeft(int n) {
    ai.djl.ndarray.index.NDIndex rest = new ai.djl.ndarray.index.NDIndex(":, :, {}:", n);
    replaceEach(l -> keys[l].get(rest), l -> values[l].get(rest));
    length -= n;
  }

  /** Replaces every layer's keys and values by what the functions make of them, freeing the old arrays. */
  private void replaceEach(java.util.function.IntFunction<NDArray> newKeys,
      java.util.function.IntFunction<NDArray> newValues) {
    for (int l = 0; l < keys.length; l++) {
      if (keys[l] != null) {
        NDArray k = newKeys.apply(l);
        NDArray v = newValues.apply(l);
        k.attach(owner);
        v.attach(owner);
        keys[l].close();
        values[l].close();
        keys[l] = k;
        values[l] = v;
      }
    }
  }

  @Override
  public void close() {
    for (int l = 0; l < keys.length; l++) {
      if (keys[l] != null) {
        keys[l].close();
        values[l].close();
        keys[l] = null;
        values[l] = null;
      }
    }
  }

  /** Keeps only the given rows (finished sequences drop out of the batch). */
  public void selectRows(long[] rows) {
    try (NDArray idx = owner.create(rows)) {
      for (int l = 0; l < keys.length; l++) {
        if (keys[l] != null) {
          NDArray k = keys[l].get(idx);
          NDArray v = values[l].get(idx);
          keys[l].close();
          values[l].close();
          keys[l] = k;
          values[l] = v;
        }
      }
    }
  }
}
