package io.grpo4j.trainer.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

/** Process-wide engine settings: offline DJL, the compute device and PyTorch's intra-op thread count. */
public final class Runtime {
  private Runtime() {}

  /** Must run before DJL is first touched: nothing may be downloaded at run time. */
  public static void offline() {
    System.setProperty("ai.djl.offline", "true");
    if (System.getProperty("ai.djl.pytorch.num_threads") == null) {
      // tiny matmuls are 2.5x slower on 2 intra-op threads than on 1; callers raise it for big models
      System.setProperty("ai.djl.pytorch.num_threads", "1");
    }
  }

  /** Parses "cpu", "gpu", "gpu(0)", "cuda:1" into a DJL device, with a clear error otherwise. */
  public static Device device(String name) {
    String n = name.trim().toLowerCase();
    if (n.startsWith("cuda")) {
      n = "gpu" + (n.contains(":") ? "(" + n.substring(n.indexOf(':') + 1) + ")" : "");
    }
    Device d;
    try {
      d = Device.fromName(n);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException("device \"" + name + "\" is not cpu, gpu or gpu(N)");
    }
    if (d.isGpu() && d.getDeviceId() >= Engine.getInstance().getGpuCount()) {
      throw new IllegalArgumentException("device \"" + name + "\" is not available: this machine has "
          + Engine.getInstance().getGpuCount() + " GPU(s) visible to PyTorch");
    }
    return d;
  }

  /**
   * Threads for a model of this size: one for small models (their matmuls are too small to split, and DJL's per-op
   * cost grows with threads), every core from hidden size 512 up.
   */
  public static void threadsFor(ModelConfig config) {
    threads(config.hiddenSize() >= 512 ? java.lang.Runtime.getRuntime().availableProcessors() : 1);
  }

  /** Sets PyTorch's intra-op threads (0 = keep the current setting). */
  public static void threads(int n) {
    if (n > 0) {
      Engine.getInstance(); // make sure the native library is loaded
      JniUtils.setNumThreads(n);
    }
  }
}
