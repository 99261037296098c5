package io.grpo4j.trainer.generation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.device.NativeTorch;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.StaticKvCache;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A fixed-shape decoding step over a {@link StaticKvCache} ({@link DeviceDecoder}, {@link SlotDecoding}): its
 * per-step inputs live in one int64 tensor (token ids | positions | the write column), uploaded in one copy that
 * does not synchronise, and its forward reads them in place, so the step can be captured as a CUDA graph.
 */
final class StepInputs {
  private final int rows;
  private final NDArray packed; // (2R + 1) int64
  private final NDArray ids; // (R, 1) view
  private final NDArray positions; // (R, 1) view
  private final NDArray zeroColumn; // (R, 1, 1, 1) float32
  private final ByteBuffer bytes;

  /** Allocates the inputs in {@code store} and makes {@code cache} write at their write column. */
  StepInputs(NDManager store, int rows, StaticKvCache cache) {
    this.rows = rows;
    packed = store.zeros(new Shape(2L * rows + 1), DataType.INT64);
    ids = packed.get(new NDIndex("0:{}", rows)).reshape(rows, 1);
    positions = packed.get(new NDIndex("{}:{}", rows, 2 * rows)).reshape(rows, 1);
    cache.useWriteIndex(packed.get(new NDIndex("{}:", 2 * rows)));
    zeroColumn = store.zeros(new Shape(rows, 1, 1, 1));
    bytes = ByteBuffer.allocateDirect((2 * rows + 1) * 8).order(ByteOrder.nativeOrder());
  }

  /** The next step's first {@code rows} tokens and positions, and the cache column it writes. */
  void upload(long[] tokens, long[] pos, int write) {
    bytes.clear();
    bytes.asLongBuffer().put(tokens, 0, rows).put(pos, 0, rows).put(write);
    if (NativeTorch.available()) {
      NativeTorch.copyFromHost(packed, bytes);
      return;
    }
    long[] all = new long[2 * rows + 1];
    System.arraycopy(tokens, 0, all, 0, rows);
    System.arraycopy(pos, 0, all, rows, rows);
    all[2 * rows] = write;
    try (NDManager tmp = packed.getManager().newSubManager()) {
      packed.set(new NDIndex("..."), tmp.create(all));
    }
  }

  /**
   * The step's forward: marks the write column attendable in {@code bias} (R, 1, 1, capacity), runs one token per
   * row through {@code model} with {@code cache}, and returns (R, V) float32 logits; everything it makes is in
   * {@code m}. Call it under {@link io.grpo4j.trainer.model.NoGrad}.
   */
  NDArray logits(CausalLM model, NDArray bias, StaticKvCache cache, NDManager m) {
    bias.set(new NDIndex(":, :, :, {}", cache.writeIndex()), zeroColumn);
    NDArray idsView = ids.get(new NDIndex("..."));
    NDArray posView = positions.get(new NDIndex("..."));
    idsView.attach(m);
    posView.attach(m);
    NDArray hidden = model.hidden(idsView, posView, bias, cache); // (R, 1, H)
    hidden.attach(m);
    NDArray logits = model.logits(hidden);
    logits.attach(m);
    NDArray flat = model.toFloat32(logits);
    flat.attach(m);
    NDArray out = flat.reshape(rows, model.config().vocabSize());
    out.attach(m);
    return out;
  }
}
