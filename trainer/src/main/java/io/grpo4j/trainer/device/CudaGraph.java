package io.grpo4j.trainer.device;

import ai.djl.Device;

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
