package io.grpo4j.trainer.device;

import ai.djl.Device;
import java.util.Locale;

/**
 * A GPU allocation that failed, told as one message: what ran, with which shapes, how much the device holds, and
 * which settings lower the need. PyTorch's own text ("CUDA out of memory. Tried to allocate ...") is kept at the end.
 */
public final class OutOfMemory extends RuntimeException {
  private OutOfMemory(String message) {
    super(message);
  }

  /** Whether {@code t} (or a cause) is PyTorch running out of device memory. */
  public static boolean is(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      String m = c.getMessage();
      if (m != null && (m.contains("out of memory") || m.contains("CUDA error: out of memory")
          || m.contains("OutOfMemoryError"))) {
        return true;
      }
    }
    return false;
  }

  /**
   * @param what the work and its shapes, e.g. "the policy update of step 3 (64 completions x 384 tokens, vocab
   *     151936, minibatch all 64 rows)"
   * @param knobs the settings that lower the need, most effective first
   */
  public static OutOfMemory of(Throwable cause, Device device, String what, String knobs) {
    String torch = summary(cause);
    Gpu.Memory mem = Gpu.memory(device);
    release(device);
    String held = mem == null ? "" : String.format(Locale.ROOT, " (PyTorch held %.1f GB, peak %.1f GB)",
        mem.reserved() / 1e9, mem.peakAllocated() / 1e9);
    OutOfMemory e = new OutOfMemory(device + " ran out of memory in " + what + held + ". Lower " + knobs + ". ["
        + torch + "]");
    e.initCause(cause);
    return e;
  }

  /**
   * PyTorch's own account, cut to what it allocated and what was free ("CUDA out of memory. Tried to allocate 8.00
   * GiB. GPU 0 has a total capacity of 139.80 GiB of which 803.12 MiB is free."), without its advice paragraph.
   */
  public static String summary(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      String m = c.getMessage();
      if (m != null && m.contains("out of memory")) {
        String line = m.lines().findFirst().orElse("").trim();
        for (String cut : new String[] {" Including non-PyTorch memory", " Of the allocated memory", " If reserved"}) {
          int i = line.indexOf(cut);
          if (i > 0) {
            line = line.substring(0, i);
          }
        }
        return line;
      }
    }
    return "";
  }

  /**
   * Hands PyTorch's cached blocks back to the driver: after a failed allocation the cache holds nearly the whole
   * device, and libraries that allocate outside it (cuBLAS creating a handle for a new thread) would fail next.
   */
  public static void release(Device device) {
    if (device != null && device.isGpu() && ai.djl.engine.Engine.getInstance().getGpuCount() > 0) {
      ai.djl.pytorch.jni.JniUtils.emptyCudaCache();
    }
  }

  /** Bytes of a (rows, tokens, vocab) float32 tensor, in GB, for messages. */
  public static String logitsGb(long rows, long tokens, long vocab) {
    return String.format(Locale.ROOT, "%.1f GB", rows * tokens * vocab * 4 / 1e9);
  }
}
