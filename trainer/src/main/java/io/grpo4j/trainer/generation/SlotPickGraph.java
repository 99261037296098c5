package io.grpo4j.trainer.generation;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.device.CudaGraph;
import io.grpo4j.trainer.device.NativeTorch;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The running rows' token pick under slot decoding, captured as a CUDA graph: their rows of the slot step's logits,
 * then {@link DevicePicker#pick}. Eagerly that is ~40 ops at ~14 us of host time each, as much again as a replayed
 * decoding step of the 0.5B shape with one sequence. It is only valid while the running rows, their picker and the
 * slot step's output stay the same; {@link ContinuousBatcher} drops it when any of them changes.
 */
final class SlotPickGraph implements AutoCloseable {
  private final Device device;
  private final NDArray logits; // (slots, V): the slot step's graph output, read in place
  private final DevicePicker picker;
  private final NDManager store;
  private final NDArray slotIndex; // (n) int64: the running rows' slots, in their order
  private final NDArray uniforms; // (n) float32: each row's draw, uploaded every step
  private final ByteBuffer uniformBytes;
  private CudaGraph graph;
  private NDArray output; // (2, n) float64: tokens, log-probs
  private boolean failed;

  /** Prepares the pick of {@code slots}' rows of {@code logits} by {@code picker}; the first {@link #pick} captures. */
  SlotPickGraph(NDManager parent, Device device, NDArray logits, DevicePicker picker, long[] slots) {
    this.device = device;
    this.logits = logits;
    this.picker = picker;
    store = parent.newSubManager();
    slotIndex = store.create(slots);
    uniforms = store.zeros(new Shape(slots.length), DataType.FLOAT32);
    uniformBytes = ByteBuffer.allocateDirect(slots.length * 4).order(ByteOrder.nativeOrder());
  }

  boolean reads(NDArray stepOutput, DevicePicker p) {
    return stepOutput == logits && p == picker;
  }

  /** This step's tokens and log-probs ((2n) as tokens then log-probs) for the rows' draws {@code u}. */
  double[] pick(float[] u) {
    uniformBytes.clear();
    uniformBytes.asFloatBuffer().put(u);
    NativeTorch.copyFromHost(uniforms, uniformBytes);
    if (output != null) {
      graph.replay();
      return output.toDoubleArray();
    }
    // the first pick runs for real (it updates the repetition-penalty marks), then is recorded
    CudaGraph.Captured<double[]> c =
        CudaGraph.runThenCapture(device, store, this::pickRows, "grpo serve: token picking");
    graph = c.graph();
    output = c.output();
    failed = graph == null;
    return c.first();
  }

  /** The running rows' logits, picked from; everything made in {@code m}. */
  private NDArray pickRows(NDManager m) {
    NDArray rows = logits.get(slotIndex);
    rows.attach(m);
    return picker.pick(rows, uniforms, m);
  }

  /** Whether the capture failed (the pick then stays eager for this batcher). */
  boolean failed() {
    return failed;
  }

  @Override
  public void close() {
    if (graph != null) {
      graph.close();
    }
    store.close();
  }
}
