package io.grpo4j.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Reusable direct buffers for the small arrays a decoding loop uploads every step (token ids, positions, the
 * attention bias). DJL wraps a Java array by copying it into a fresh direct buffer that the tensor then points
 * at; those buffers are freed only when the garbage collector gets round to them, so a long sampling run grows
 * its resident memory by megabytes per call. Here each slot keeps one buffer and hands it out again once the
 * step that used it has closed its manager. One instance per thread; an array made from a slot must be closed
 * before the same slot is used again.
 */
public final class HostStaging {
  private final ByteBuffer[] slots;

  public HostStaging(int slots) {
    this.slots = new ByteBuffer[slots];
  }

  private ByteBuffer slot(int i, int bytes) {
    ByteBuffer b = slots[i];
    if (b == null || b.capacity() < bytes) {
      b = ByteBuffer.allocateDirect(Math.max(bytes, b == null ? 0 : b.capacity() * 2))
          .order(ByteOrder.nativeOrder());
      slots[i] = b;
    }
    b.clear();
    return b;
  }

  public NDArray longs(NDManager m, int slot, long[] data, Shape shape) {
    ByteBuffer b = slot(slot, data.length * 8);
    b.asLongBuffer().put(data);
    b.limit(data.length * 8);
    return m.create(b.slice().order(ByteOrder.nativeOrder()), shape, DataType.INT64);
  }

  public NDArray floats(NDManager m, int slot, float[] data, Shape shape) {
    ByteBuffer b = slot(slot, data.length * 4);
    b.asFloatBuffer().put(data);
    b.limit(data.length * 4);
    return m.create(b.slice().order(ByteOrder.nativeOrder()), shape, DataType.FLOAT32);
  }
}
