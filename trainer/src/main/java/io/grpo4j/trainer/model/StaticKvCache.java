package io.grpo4j.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * A key/value cache of fixed shape: every layer's keys and values live in one buffer of {@code capacity} positions
 * allocated up front, each decoding step writes its position in place at {@link #writeIndex()} (a device tensor the
 * caller sets), and attention runs over the whole buffer with the not-yet-written positions masked. Nothing is
 * allocated or moved per step, so a decoding step has the same shapes and addresses every time, which is what a
 * captured CUDA graph needs; it also saves the O(T^2) copying of a cache that grows by concatenation.
 */
public final class StaticKvCache implements KvStore, AutoCloseable {
  private final NDArray[] keys; // per layer: (B, kv_heads, capacity, head_dim)
  private final NDArray[] values; // per layer: (B, kv_heads, capacity, head_dim)
  private NDArray writeIndex; // (1) int64: the position this step writes
  private NDIndex writeAt;
  private final int capacity;

  public StaticKvCache(ModelConfig config, NDManager manager, int rows, int capacity, DataType type) {
    int layers = config.numHiddenLayers();
    keys = new NDArray[layers];
    values = new NDArray[layers];
    Shape shape = new Shape(rows, config.numKeyValueHeads(), capacity, config.headDim());
    for (int l = 0; l < layers; l++) {
      keys[l] = manager.zeros(shape, type);
      values[l] = manager.zeros(shape, type);
    }
    writeIndex = manager.zeros(new Shape(1), DataType.INT64);
    writeAt = new NDIndex(":, :, {}", writeIndex);
    this.capacity = capacity;
  }

  public int capacity() {
    return capacity;
  }

  public int rows() {
    return (int) keys[0].getShape().get(0);
  }

  /** Takes the write position from {@code index} (a (1) int64 tensor, e.g. a view of a step's packed inputs). */
  public void useWriteIndex(NDArray index) {
    writeIndex.close();
    writeIndex = index;
    writeAt = new NDIndex(":, :, {}", index);
  }

  /** The position the next {@link #append} writes: set it (in place) before each decoding step. */
  public NDArray writeIndex() {
    return writeIndex;
  }

  @Override
  public NDArray[] append(int layer, NDArray k, NDArray v) {
    keys[layer].set(writeAt, k);
    values[layer].set(writeAt, v);
    k.close();
    v.close();
    return new NDArray[] {keys[layer], values[layer]};
  }

  /**
   * Copies a prefilled cache into positions [0, T_prompt): row r here takes row {@code sourceRow[r]} there (the
   * completions of one prompt share its prefill).
   */
  public void fill(KvCache prefill, NDArray sourceRows) {
    for (int l = 0; l < keys.length; l++) {
      NDArray k = prefill.keys(l);
      long t = k.getShape().get(2);
      NDIndex head = new NDIndex(":, :, 0:{}", t);
      try (NDArray kr = k.get(sourceRows); NDArray vr = prefill.values(l).get(sourceRows)) {
        keys[l].set(head, kr);
        values[l].set(head, vr);
      }
    }
  }

  /** Writes row {@code row} of a prefilled cache (all its T positions) into row {@code slot}, positions [at, at+T). */
  public void loadRow(int slot, int at, KvCache prefill, int row) {
    for (int l = 0; l < keys.length; l++) {
      NDArray k = prefill.keys(l);
      long t = k.getShape().get(2);
      NDIndex into = new NDIndex("{}, :, {}:{}", slot, at, at + t);
      try (NDArray kr = k.get(row); NDArray vr = prefill.values(l).get(row)) {
        keys[l].set(into, kr);
        values[l].set(into, vr);
      }
    }
  }

  /** Moves positions [from, to) of every row by {@code by} (right when positive); the rest stays as it was. */
  public void moveColumns(int from, int to, int by) {
    NDIndex src = new NDIndex(":, :, {}:{}", from, to);
    NDIndex dst = new NDIndex(":, :, {}:{}", from + by, to + by);
    for (int l = 0; l < keys.length; l++) {
      // the ranges may overlap: copy out first
      try (NDArray kv = keys[l].get(src); NDArray vv = values[l].get(src); NDArray k = kv.duplicate();
          NDArray v = vv.duplicate()) {
        keys[l].set(dst, k);
        values[l].set(dst, v);
      }
    }
  }

  /** Copies {@code other} (no more rows or positions than this) into this cache's first rows and positions. */
  public void copyFrom(StaticKvCache other) {
    NDIndex into = new NDIndex("0:{}, :, 0:{}", other.rows(), other.capacity);
    for (int l = 0; l < keys.length; l++) {
      keys[l].set(into, other.keys[l]);
      values[l].set(into, other.values[l]);
    }
  }

  @Override
  public void close() {
    for (int l = 0; l < keys.length; l++) {
      keys[l].close();
      values[l].close();
    }
    writeIndex.close();
  }
}
