package io.grpo4j.trainer.device;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * A CUDA graph of whatever DJL ops this thread runs between {@link #capture} and {@link #end}: replaying it launches
 * all their kernels at once, without the ~14 us of host work per op that eager execution costs on a GPU (a decoding
 * step of a 24-layer model is ~800 ops). Inputs and outputs are tensors made before the capture (or during it) whose
 * storage never moves: the caller writes new inputs into them in place ({@link NativeTorch#copyFromHost}) and reads
 * the outputs after {@link #replay}. Ops that synchronise with the host (reading a value, uploading from a Java
 * array) are not allowed while capturing.
 *
 * <pre>{@code
 * try (CudaGraph g = CudaGraph.open(device)) {   // a side stream is current from here until end()
 *   step();            // warm-up, for real (cuBLAS workspaces, lazy initialisation)
 *   g.capture();
 *   out = step();      // recorded, not run
 *   g.end();
 *   g.replay();        // runs the recorded step
 * }
 * }</pre>
 */
public final class CudaGraph implements AutoCloseable {
  private long handle;
  private boolean ended;

  private CudaGraph(long handle) {
    this.handle = handle;
  }

  /** Whether graphs can be used on this device (a CUDA device and grpo4j's native library built for CUDA). */
  public static boolean supported(Device device) {
    return device.isGpu() && NativeTorch.available() && NativeTorch.builtWithCuda()
        && !Boolean.getBoolean("grpo4j.noCudaGraphs");
  }

  /**
   * The first step of a captured loop, as every decoder here takes it: the step runs for real on a capture stream
   * (warm-up: lazy initialisation, cuBLAS workspaces; this is the step's result), then is recorded once more.
   *
   * @param eager the step, run now; an exception here is the step's own and goes up (the graph is closed)
   * @param recorded the step again, recorded, not run: returns its output tensor, which every replay rewrites
   * @param what names the step in the warning printed when the capture fails
   * @return the eager result, and the graph with its output, or a null graph when the capture failed: the caller
   *     then stays eager, and keeps the eager result rather than running the step again (the warm-up has already
   *     written its state: cache positions, the repetition penalty's seen tokens)
   */
  public static <T> Captured<T> runThenCapture(Device device, Supplier<T> eager, Supplier<NDArray> recorded,
      String what) {
    CudaGraph g = open(device);
    T first;
    try {
      first = eager.get();
    } catch (RuntimeException | Error e) {
      g.close();
      throw e;
    }
    try {
      g.capture();
      NDArray output = recorded.get();
      g.end();
      return new Captured<>(first, g, output);
    } catch (RuntimeException e) {
      g.close(); // back on the caller's stream
      System.err.println(what + ": CUDA graph capture failed (" + e.getMessage() + "); running eagerly");
      return new Captured<>(first, null, null);
    }
  }

  /**
   * {@link #runThenCapture} for a step that makes its arrays in a manager it is given and whose result is read back
   * to the host: the eager run's arrays are freed after it, the recorded run's output is kept in {@code store}.
   */
  public static Captured<double[]> runThenCapture(Device device, NDManager store,
      Function<NDManager, NDArray> step, String what) {
    return runThenCapture(device, () -> {
      try (NDManager m = store.newSubManager()) {
        return step.apply(m).toDoubleArray();
      }
    }, () -> {
      NDManager captured = store.newSubManager();
      NDArray out = step.apply(captured);
      out.attach(store);
      captured.close();
      return out;
    }, what);
  }

  /** What {@link #runThenCapture} gives: the step's eager result, and the graph and its output (null: failed). */
  public record Captured<T>(T first, CudaGraph graph, NDArray output) {}

  /** Makes a side stream current on this thread (capture cannot use the default stream). */
  public static CudaGraph open(Device device) {
    return new CudaGraph(NativeTorch.graphNew(Gpu.index(device)));
  }

  /** Starts recording. */
  public void capture() {
    NativeTorch.graphCapture(handle);
  }

  /** Stops recording and returns to the caller's stream; throws if the capture failed. */
  public void end() {
    ended = true;
    NativeTorch.graphEnd(handle, true);
  }

  public void replay() {
    if (!ended) {
      throw new IllegalStateException("replay before end()");
    }
    NativeTorch.graphReplay(handle);
  }

  @Override
  public void close() {
    if (handle != 0) {
      if (!ended) {
        NativeTorch.graphEnd(handle, false); // a failed capture: back to the caller's stream
      }
      NativeTorch.graphFree(handle);
      handle = 0;
    }
  }
}
