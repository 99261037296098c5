package io.grpo4j.trainer.device;

import ai.djl.Device;
import ai.djl.engine.Engine;
import java.util.LinkedHashMap;
import java.util.Map;

/** GPU facts a run reports: memory held by PyTorch's caching allocator (current and peak), and synchronisation. */
public final class Gpu {
  private Gpu() {}

  /** Memory of one device in bytes, as torch.cuda.memory_allocated / max_memory_allocated / memory_reserved. */
  public record Memory(long allocated, long peakAllocated, long reserved, long peakReserved) {
    /** For metrics.jsonl and bench JSON: gpu_mem_allocated_mb, gpu_mem_peak_mb, gpu_mem_reserved_mb. */
    public Map<String, Object> asMetrics() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("gpu_mem_allocated_mb", mb(allocated));
      m.put("gpu_mem_peak_mb", mb(peakAllocated));
      m.put("gpu_mem_reserved_mb", mb(reserved));
      return m;
    }

    private static double mb(long bytes) {
      return Math.round(bytes / 1048576.0 * 10) / 10.0;
    }
  }

  /** The device's memory, or null when it is not a GPU or the native library is missing. */
  public static Memory memory(Device device) {
    if (device == null || !device.isGpu() || !NativeTorch.available()) {
      return null;
    }
    long[] m = NativeTorch.cudaMemory(index(device));
    return new Memory(m[0], m[1], m[2], m[3]);
  }

  /** Starts a new peak window (the next {@link #memory} peak counts from here). */
  public static void resetPeak(Device device) {
    if (device != null && device.isGpu() && NativeTorch.available()) {
      NativeTorch.cudaResetPeak(index(device));
    }
  }

  /** Waits for the device's queued work (timings of GPU work need it). */
  public static void synchronize(Device device) {
    if (device != null && device.isGpu() && NativeTorch.available()) {
      NativeTorch.synchronize(index(device));
    }
  }

  /** The CUDA index of a GPU device (DJL's "gpu" without an index means the first). */
  static int index(Device device) {
    return Math.max(0, device.getDeviceId());
  }

  /** GPUs PyTorch sees (0 without CUDA). */
  public static int count() {
    return NativeTorch.available() ? NativeTorch.cudaDeviceCount() : Engine.getInstance().getGpuCount();
  }
}
