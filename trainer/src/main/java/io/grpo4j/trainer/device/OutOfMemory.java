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
    String torch = "";
    for (Throwable c = cause; c != null; c = c.getCause()) {
      if (c.getMessage() != null && c.getMessage().contains("out of memory")) {
        torch = c.getMessage().lines().findFirst().orElse("").trim();
        break;
      }
    }
    Gpu.Memory mem = Gpu.memory(device);
    String held = mem == null ? "" : String.format(Locale.ROOT, " (PyTorch held %.1f GB, peak %.1f GB)",
        mem.reserved() / 1e9, mem.peakAllocated() / 1e9);
    OutOfMemory e = new OutOfMemory(device + " ran out of memory in " + what + held + ". Lower " + knobs + ". ["
        + torch + "]");
    e.initCause(cause);
    return e;
  }

  /** Bytes of a (rows, tokens, vocab) float32 tensor, in GB, for messages. */
  public static String logitsGb(long rows, long tokens, long vocab) {
    return String.format(Locale.ROOT, "%.1f GB", rows * tokens * vocab * 4 / 1e9);
  }
}
