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

  /**
   * DJL's PyTorch engine, with one clear message when its native libraries do not load: most often a JNI built by
   * scripts/setup-pytorch.sh for another libtorch than the one PYTORCH_LIBRARY_PATH now holds.
   */
  public static Engine engine() {
    try {
      return Engine.getInstance();
    } catch (UnsatisfiedLinkError | ai.djl.engine.EngineException | IllegalStateException e) {
      String torch = System.getenv("PYTORCH_LIBRARY_PATH");
      Throwable root = e;
      while (root.getCause() != null) {
        root = root.getCause();
      }
      String why = root.getMessage() == null ? root.toString() : root.getMessage();
      if (torch != null) {
        throw new IllegalStateException("PyTorch did not load from " + torch + " (set up by scripts/setup-pytorch.sh"
            + " for " + System.getenv("GRPO4J_TORCH_FULL_VERSION") + "): " + why + ". A JNI that does not match"
            + " its libtorch cannot load: run scripts/setup-pytorch.sh again, or --reset for the bundled CPU build");
      }
      throw new IllegalStateException("PyTorch did not load: " + why);
    }
  }

  /** Parses "cpu", "gpu", "gpu(0)", "cuda:1" into a DJL device, with a clear error otherwise. */
  public static Device device(String name) {
    String n = name.trim().toLowerCase();
    if (n.startsWith("cuda")) {
      n = "gpu" + (n.contains(":") ? n.substring(n.indexOf(':') + 1) : "");
    }
    n = n.replaceFirst("^gpu\\((\\d+)\\)$", "gpu$1"); // DJL's fromName reads "gpu1", not the "gpu(1)" it prints
    Device d;
    try {
      d = Device.fromName(n);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException("device \"" + name + "\" is not cpu, gpu or gpu(N)");
    }
    if (d.isGpu() && d.getDeviceId() < 0) {
      d = Device.gpu(0); // DJL reads a bare "gpu" as id -1; CUDA calls need a real index
    }
    if (d.isGpu()) {
      int gpus = engine().getGpuCount();
      if (gpus == 0) {
        String torch = System.getenv("GRPO4J_TORCH_FULL_VERSION");
        throw new IllegalArgumentException("device \"" + name + "\": no usable GPU. " + (torch == null
            ? "grpo runs on the bundled PyTorch, a CPU build: run scripts/setup-pytorch.sh --python <a Python whose"
                + " torch is a CUDA build> (see README, On a GPU)"
            : "PyTorch " + torch + " (set up by scripts/setup-pytorch.sh) " + (torch.contains("+cu")
                ? "sees no CUDA device: check nvidia-smi and CUDA_VISIBLE_DEVICES"
                : "is a CPU build: run scripts/setup-pytorch.sh with a CUDA build of PyTorch"))
            + "; or use --device cpu");
      }
      if (d.getDeviceId() >= gpus) {
        throw new IllegalArgumentException("device \"" + name + "\" is not available: this machine has " + gpus
            + " GPU(s) visible to PyTorch (gpu(0) .. gpu(" + (gpus - 1) + "))");
      }
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
