package io.grpo4j.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Keys and values of every layer for the tokens seen so far, so that decoding one more token costs one position,
 * not the whole sequence. Each layer's keys and values live in a buffer with room to grow (doubling when full):
 * a step writes its positions in place and attention reads a view of the filled part, instead of concatenating
 * (copying the whole cache every step, which at 64 rows and 80 positions is most of a small model's step). Arrays
 * live in the manager of the decoding step that owns the cache.
 *
 * <p>Buffers may also hold spare rows past the ones in use, for continuous batching: rows that join are written
 * into them ({@link #appendRows}) and rows that leave are replaced by rows moved from the end ({@link
 * #selectRows}), so neither copies the whole cache.
 */
public final class KvCache implements KvStore, AutoCloseable {
  private final NDArray[] keyBuffers; // per layer: (row capacity, kv_heads, position capacity, head_dim)
  private final NDArray[] valueBuffers;
  private final NDArray[] keys; // per layer: the rows in use and filled positions, (B, kv_heads, T_past, head_dim)
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

  /** Rows in use (0 when empty). */
  public int rows() {
    NDArray k = keys[keys.length - 1];
    return k == null ? 0 : (int) k.getShape().get(0);
  }

  /** Writes this step's keys/values of {@code layer} after the past ones and returns the full (past + new) ones. */
  @Override
  public NDArray[] append(int layer, NDArray k, NDArray v) {
    int t = (int) k.getShape().get(2);
    if (keys[layer] == null) {
      // a prefill: its own arrays are the first buffer (room comes with the first growth)
      k.attach(owner);
      v.attach(owner);
      useBuffers(layer, k, v, (int) k.getShape().get(0), t);
    } else {
      int past = filled[layer];
      int rows = (int) keys[layer].getShape().get(0);
      if (past + t > keyBuffers[layer].getShape().get(2)) {
        grow(layer, past + t);
      }
      ai.djl.ndarray.index.NDIndex at = block(0, rows, past, past + t);
      keyBuffers[layer].set(at, k);
      valueBuffers[layer].set(at, v);
      k.close();
      v.close();
      closeViews(layer);
      useBuffers(layer, keyBuffers[layer], valueBuffers[layer], rows, past + t);
    }
    return new NDArray[] {keys[layer], values[layer]};
  }

  /**
   * Rows [rowFrom, rowTo) at positions [from, to), every head, built directly: a decoding step makes four of these
   * per layer, and parsing an index string costs more than the copy it saves on a small batch.
   */
  private static ai.djl.ndarray.index.NDIndex block(long rowFrom, long rowTo, long from, long to) {
    return new ai.djl.ndarray.index.NDIndex().addSliceDim(rowFrom, rowTo).addAllDim().addSliceDim(from, to);
  }

  /** New buffers of at least {@code need} positions (twice the old room), holding the filled part. */
  private void grow(int layer, int need) {
    ai.djl.ndarray.types.Shape s = keyBuffers[layer].getShape();
    long room = Math.max(need, 2 * s.get(2));
    ai.djl.ndarray.types.Shape shape = new ai.djl.ndarray.types.Shape(s.get(0), s.get(1), room, s.get(3));
    NDArray kb = owner.zeros(shape, keys[layer].getDataType());
    NDArray vb = owner.zeros(shape, values[layer].getDataType());
    int rows = (int) keys[layer].getShape().get(0);
    ai.djl.ndarray.index.NDIndex head = block(0, rows, 0, filled[layer]);
    kb.set(head, keys[layer]);
    vb.set(head, values[layer]);
    int t = filled[layer];
    closeLayer(layer);
    useBuffers(layer, kb, vb, rows, t);
  }

  /**
   * Makes {@code kb}/{@code vb} (owned by the cache) the layer's buffers and their first {@code rows} rows at the
   * first {@code t} positions its keys and values.
   */
  private void useBuffers(int layer, NDArray kb, NDArray vb, int rows, int t) {
    keyBuffers[layer] = kb;
    valueBuffers[layer] = vb;
    if (kb.getShape().get(0) == rows && kb.getShape().get(2) == t) {
      keys[layer] = kb;
      values[layer] = vb;
    } else {
      ai.djl.ndarray.index.NDIndex upTo = block(0, rows, 0, t);
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
   * zero positions on its left, which the attention mask must hide. Written into the spare rows when they are
   * enough and the new rows are no longer than these; else one copy of both into new buffers, with spare rows (up to
   * the next power of two) and room to grow.
   */
  public void appendRows(KvCache other) {
    int length = length();
    int rows = rows();
    int extra = other.rows();
    if (rows > 0 && other.length() <= length && rows + extra <= keyBuffers[keys.length - 1].getShape().get(0)) {
      for (int l = 0; l < keys.length; l++) {
        int pad = length - other.length();
        for (NDArray buffer : new NDArray[] {keyBuffers[l], valueBuffers[l]}) {
          if (pad > 0) {
            buffer.set(block(rows, rows + extra, 0, pad), 0f); // rows that left wrote there
          }
        }
        keyBuffers[l].set(block(rows, rows + extra, pad, length), other.keys[l]);
        valueBuffers[l].set(block(rows, rows + extra, pad, length), other.values[l]);
        closeViews(l);
        useBuffers(l, keyBuffers[l], valueBuffers[l], rows + extra, length);
      }
      return;
    }
    int len = Math.max(length, other.length());
    long capacity = Long.highestOneBit(rows + extra - 1L) << 1;
    for (int l = 0; l < keys.length; l++) {
      if (keys[l] == null) {
        continue;
      }
      NDArray[] mine = {keys[l], values[l]};
      NDArray[] theirs = {other.keys[l], other.values[l]};
      NDArray[] merged = new NDArray[2];
      for (int kv = 0; kv < 2; kv++) {
        ai.djl.ndarray.types.Shape s = mine[kv].getShape();
        merged[kv] = owner.zeros(new ai.djl.ndarray.types.Shape(Math.max(capacity, rows + extra), s.get(1), 2L * len,
            s.get(3)), mine[kv].getDataType());
        merged[kv].set(block(0, rows, len - length, len), mine[kv]);
        merged[kv].set(block(rows, rows + extra, len - other.length(), len), theirs[kv]);
      }
      closeLayer(l);
      useBuffers(l, merged[0], merged[1], rows + extra, len);
    }
  }

  /** Drops the first {@code n} positions of every row (no row attends to them any more). */
  public void trimLeft(int n) {
    int rows = rows();
    ai.djl.ndarray.index.NDIndex rest = new ai.djl.ndarray.index.NDIndex(":, :, {}:", n);
    for (int l = 0; l < keys.length; l++) {
      if (keys[l] != null) { // views: the spare rows and the room on the right stay
        NDArray kb = keyBuffers[l].get(rest);
        NDArray vb = valueBuffers[l].get(rest);
        kb.attach(owner);
        vb.attach(owner);
        int t = filled[l] - n;
        closeLayer(l);
        useBuffers(l, kb, vb, rows, t);
      }
    }
  }

  /**
   * Replaces every layer's buffers by {@code f} of the rows in use (selected or repeated, or {@code dropped}
   * positions cut on the left), keeping their spare room so that the next step writes in place instead of growing
   * them again.
   */
  private void rebuffer(java.util.function.UnaryOperator<NDArray> f, int dropped) {
    int rows = rows();
    for (int l = 0; l < keys.length; l++) {
      if (keys[l] != null) {
        NDArray kb = applyToRowsInUse(f, keyBuffers[l], rows);
        NDArray vb = applyToRowsInUse(f, valueBuffers[l], rows);
        kb.attach(owner);
        vb.attach(owner);
        int t = filled[l] - dropped;
        closeLayer(l);
        useBuffers(l, kb, vb, (int) kb.getShape().get(0), t);
      }
    }
  }

  /** {@code f} of the buffer's first {@code rows} rows, all positions. */
  private static NDArray applyToRowsInUse(java.util.function.UnaryOperator<NDArray> f, NDArray buffer, int rows) {
    if (buffer.getShape().get(0) == rows) {
      return f.apply(buffer);
    }
    try (NDArray inUse = buffer.get(new ai.djl.ndarray.index.NDIndex("0:{}", rows))) {
      return f.apply(inUse); // a new array (a gather or a repeat), never the view itself
    }
  }

  @Override
  public void close() {
    for (int l = 0; l < keys.length; l++) {
      closeLayer(l);
    }
  }

  /**
   * Keeps only the given rows, in that order (finished sequences drop out of the batch). When every row that moves
   * comes from past the kept ones ({@code rows[i]} is i, or at least {@code rows.length}: holes filled from the end)
   * only those rows are copied, and the rest stay where they are as spare rows; else the cache is gathered anew.
   */
  public void selectRows(long[] rows) {
    int inUse = rows();
    int kept = rows.length;
    boolean fromTheEnd = kept <= inUse;
    for (int i = 0; i < kept && fromTheEnd; i++) {
      fromTheEnd = rows[i] == i || rows[i] >= kept && rows[i] < inUse;
    }
    if (!fromTheEnd) {
      try (NDArray idx = owner.create(rows)) {
        rebuffer(b -> b.get(idx), 0);
      }
      return;
    }
    for (int l = 0; l < keys.length; l++) {
      if (keys[l] == null) {
        continue;
      }
      for (NDArray buffer : new NDArray[] {keyBuffers[l], valueBuffers[l]}) {
        for (int i = 0; i < kept; i++) {
          if (rows[i] != i) {
            try (NDArray row = buffer.get(new ai.djl.ndarray.index.NDIndex("{}:{}", rows[i], rows[i] + 1))) {
              buffer.set(new ai.djl.ndarray.index.NDIndex("{}:{}", i, i + 1), row);
            }
          }
        }
      }
      closeViews(l);
      useBuffers(l, keyBuffers[l], valueBuffers[l], kept, filled[l]);
    }
  }
}
