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

  private static volatile int userThreads; // > 0: the user's explicit choice, kept for every phase
  private static volatile int current;

  /**
   * Threads for a model of this size: one for small models (their matmuls are too small to split, and DJL's per-op
   * cost grows with threads), every core from hidden size 512 up. Switching per phase (all cores for the update,
   * one for decoding) was tried and measured slower: the first ops after a change of thread count pay for it
   * (a GRPO step on tiny-qwen2 took 0.132 s that way, 0.100 s on 1 thread throughout). Does nothing when the
   * user fixed the count.
   */
  public static void threadsFor(ModelConfig config) {
    if (userThreads > 0) {
      return;
    }
    int n = config.hiddenSize() >= 512 ? java.lang.Runtime.getRuntime().availableProcessors() : 1;
    if (n != current) {
      threads(n);
    }
  }

  /** The user's thread count (training.threads, --threads), kept whatever the model size; 0 = by model size. */
  public static void userThreads(int n) {
    userThreads = Math.max(0, n);
    if (n > 0) {
      threads(n);
    }
  }

  /** PyTorch's intra-op thread count as last set (DJL starts it from ai.djl.pytorch.num_threads). */
  public static int intraOpThreads() {
    if (current > 0) {
      return current;
    }
    String p = System.getProperty("ai.djl.pytorch.num_threads");
    return p != null && p.matches("\\d+") ? Integer.parseInt(p) : java.lang.Runtime.getRuntime().availableProcessors();
  }

  /** Sets PyTorch's intra-op threads (0 = keep the current setting). */
  public static void threads(int n) {
    if (n > 0) {
      Engine.getInstance(); // make sure the native library is loaded
      JniUtils.setNumThreads(n);
      current = n;
    }
  }
}
