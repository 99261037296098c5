package io.grpo4j.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Keys and values of every layer for the tokens seen so far, so that decoding one more token costs one position,
 * not the whole sequence. Each layer's keys and values live in a buffer with room to grow (doubling when full):
 * a step writes its positions in place and attention reads a view of the filled part, instead of concatenating
 * (copying the whole cache every step, which at 64 rows and 80 positions is most of a small model's step). Arrays
 * live in the manager of the decoding step that owns the cache.
 */
public final class KvCache implements KvStore, AutoCloseable {
  private final NDArray[] keyBuffers; // per layer: (B, kv_heads, capacity, head_dim)
  private final NDArray[] valueBuffers;
  private final NDArray[] keys; // per layer: the filled part of the buffer, (B, kv_heads, T_past, head_dim)
  private final NDArray[] values;
  private final int[] filled; // per layer: T_past
  private final NDManager owner; // where the cache's arrays live between decoding steps

  public KvCache(int layers, NDManager owner) {
    keyBuffers = new NDArray[layers];
    valueBuffers = new NDArray[layers];
    keys = new NDArray[layers];
    values = new NDArray[layers];
    filled = new int[layers];
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
    return filled[filled.length - 1]; // the last layer's: a forward fills the layers in order
  }

  /** Writes this step's keys/values of {@code layer} after the past ones and returns the full (past + new) ones. */
  @Override
  public NDArray[] append(int layer, NDArray k, NDArray v) {
    int t = (int) k.getShape().get(2);
    if (keys[layer] == null) {
      // a prefill: its own arrays are the first buffer (room comes with the first growth)
      k.attach(owner);
      v.attach(owner);
      useBuffers(layer, k, v, t);
    } else {
      int past = filled[layer];
      if (past + t > keyBuffers[layer].getShape().get(2)) {
        grow(layer, past + t);
      }
      ai.djl.ndarray.index.NDIndex at = positions(past, past + t);
      keyBuffers[layer].set(at, k);
      valueBuffers[layer].set(at, v);
      k.close();
      v.close();
      closeViews(layer);
      useBuffers(layer, keyBuffers[layer], valueBuffers[layer], past + t);
    }
    return new NDArray[] {keys[layer], values[layer]};
  }

  /**
   * Positions [from, to) of every row and head, built directly: a decoding step makes four of these per layer, and
   * parsing an index string costs more than the copy it saves on a small batch.
   */
  private static ai.djl.ndarray.index.NDIndex positions(long from, long to) {
    return new ai.djl.ndarray.index.NDIndex().addAllDim(2).addSliceDim(from, to);
  }

  /** New buffers of at least {@code need} positions (twice the old room), holding the filled part. */
  private void grow(int layer, int need) {
    ai.djl.ndarray.types.Shape s = keys[layer].getShape();
    long room = Math.max(need, 2 * keyBuffers[layer].getShape().get(2));
    ai.djl.ndarray.types.Shape shape = new ai.djl.ndarray.types.Shape(s.get(0), s.get(1), room, s.get(3));
    NDArray kb = owner.zeros(shape, keys[layer].getDataType());
    NDArray vb = owner.zeros(shape, values[layer].getDataType());
    ai.djl.ndarray.index.NDIndex head = positions(0, filled[layer]);
    kb.set(head, keys[layer]);
    vb.set(head, values[layer]);
    int t = filled[layer];
    closeLayer(layer);
    useBuffers(layer, kb, vb, t);
  }

  /**
   * Makes {@code kb}/{@code vb} (owned by the cache) the layer's buffers and their first {@code t} positions its keys
   * and values.
   */
  private void useBuffers(int layer, NDArray kb, NDArray vb, int t) {
    keyBuffers[layer] = kb;
    valueBuffers[layer] = vb;
    if (kb.getShape().get(2) == t) {
      keys[layer] = kb;
      values[layer] = vb;
    } else {
      ai.djl.ndarray.index.NDIndex upTo = positions(0, t);
      keys[layer] = kb.get(upTo);
      values[layer] = vb.get(upTo);
      keys[layer].attach(owner);
      values[layer].attach(owner);
    }
    filled[layer] = t;
  }

  private void closeViews(int layer) {
    if (keys[layer] != null && keys[layer] != keyBuffers[layer]) {
      keys[layer].close();
      values[layer].close();
    }
  }

  private void closeLayer(int layer) {
    closeViews(layer);
    if (keyBuffers[layer] != null) {
      keyBuffers[layer].close();
      valueBuffers[layer].close();
    }
    keyBuffers[layer] = null;
    valueBuffers[layer] = null;
    keys[layer] = null;
    values[layer] = null;
    filled[layer] = 0;
  }

  /**
   * Repeats every row {@code times} times in place (row i becomes rows i*times .. i*times+times-1): a group of G
   * completions shares its prompt's prefill instead of recomputing it G times.
   */
  public void repeatRows(int times) {
    rebuffer(b -> b.repeat(0, times), 0);
  }

  /**
   * Appends another cache's rows (same layers) below this one's, both aligned on the right: the shorter one gets
   * zero positions on its left, which the attention mask must hide. One copy into buffers with room to grow.
   */
  public void appendRows(KvCache other) {
    int length = length();
    int len = Math.max(length, other.length());
    for (int l = 0; l < keys.length; l++) {
      if (keys[l] == null) {
        continue;
      }
      NDArray[] mine = {keys[l], values[l]};
      NDArray[] theirs = {other.keys[l], other.values[l]};
      NDArray[] merged = new NDArray[2];
      long b1 = mine[0].getShape().get(0);
      for (int kv = 0; kv < 2; kv++) {
        ai.djl.ndarray.types.Shape s = mine[kv].getShape();
        long rows = b1 + theirs[kv].getShape().get(0);
        merged[kv] = owner.zeros(new ai.djl.ndarray.types.Shape(rows, s.get(1), 2L * len, s.get(3)),
            mine[kv].getDataType());
        merged[kv].set(new ai.djl.ndarray.index.NDIndex("0:{}, :, {}:{}", b1, len - length, len), mine[kv]);
        merged[kv].set(new ai.djl.ndarray.index.NDIndex("{}:, :, {}:{}", b1, len - other.length(), len), theirs[kv]);
      }
      closeLayer(l);
      useBuffers(l, merged[0], merged[1], len);
    }
  }

  /** Drops the first {@code n} positions of every row (no row attends to them any more). */
  public void trimLeft(int n) {
    ai.djl.ndarray.index.NDIndex rest = new ai.djl.ndarray.index.NDIndex(":, :, {}:", n);
    rebuffer(b -> b.get(rest), n); // a view: the room on the right stays
  }

  /**
   * Replaces every layer's buffers by {@code f} of them (rows selected or repeated, or {@code dropped} positions
   * cut on the left), keeping their spare room so that the next step writes in place instead of growing them again.
   */
  private void rebuffer(java.util.function.UnaryOperator<NDArray> f, int dropped) {
    for (int l = 0; l < keys.length; l++) {
      if (keys[l] != null) {
        NDArray kb = f.apply(keyBuffers[l]);
        NDArray vb = f.apply(valueBuffers[l]);
        kb.attach(owner);
        vb.attach(owner);
        int t = filled[l] - dropped;
        closeLayer(l);
        useBuffers(l, kb, vb, t);
      }
    }
  }

  @Override
  public void close() {
    for (int l = 0; l < keys.length; l++) {
      closeLayer(l);
    }
  }

  /** Keeps only the given rows (finished sequences drop out of the batch). */
  public void selectRows(long[] rows) {
    try (NDArray idx = owner.create(rows)) {
      rebuffer(b -> b.get(idx), 0);
    }
  }
}
