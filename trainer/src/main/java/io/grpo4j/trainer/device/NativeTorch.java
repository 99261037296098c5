package io.grpo4j.trainer.device;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * grpo4j's own JNI library ({@code trainer/src/main/native}), built by {@code scripts/setup-pytorch.sh} against the
 * same libtorch as DJL's JNI: the libtorch calls DJL does not expose (GPU memory statistics, TF32, a cast that
 * autograd records, fused attention, CUDA graphs, in-place uploads). It works on DJL tensors' native handles.
 *
 * <p>Absent with the bundled CPU build (CI): {@link #available()} is false and every caller has a plain-DJL path.
 */
public final class NativeTorch {
  private static final String ENV = "GRPO4J_NATIVE";
  private static final int ABI = 4; // = abiVersion() of the sources in trainer/src/main/native
  private static volatile Boolean loaded;
  private static volatile String loadError;

  private NativeTorch() {}

  /** Whether the library is there and loaded (after DJL's engine, whose libtorch it links against). */
  public static boolean available() {
    Boolean l = loaded;
    if (l == null) {
      synchronized (NativeTorch.class) {
        if (loaded == null) {
          loaded = load();
        }
        l = loaded;
      }
    }
    return l;
  }

  /** Why the library is not loaded (null when it is, or when none was set up). */
  public static String loadError() {
    available();
    return loadError;
  }

  /** The library's path as set up, or null. */
  public static String path() {
    String p = System.getProperty("grpo4j.native", System.getenv(ENV));
    return p == null || p.isBlank() ? null : p;
  }

  private static boolean load() {
    String p = path();
    if (p == null) {
      return false;
    }
    if (!Files.isRegularFile(Path.of(p))) {
      loadError = ENV + "=" + p + " does not exist; run scripts/setup-pytorch.sh again";
      return false;
    }
    Engine.getInstance(); // libtorch first: this library resolves its symbols there
    try {
      System.load(p);
      int abi = abiVersion();
      if (abi != ABI) {
        loadError = p + " was built from other grpo4j sources (interface " + abi + ", this grpo4j needs " + ABI
            + "); run scripts/setup-pytorch.sh again";
        return false;
      }
      return true;
    } catch (UnsatisfiedLinkError e) {
      loadError = p + " does not match the libtorch DJL loaded (" + e.getMessage() + "); run"
          + " scripts/setup-pytorch.sh again";
      return false;
    }
  }

  /** Throws with the reason when the library is missing. */
  public static void require(String what) {
    if (!available()) {
      String why = loadError();
      throw new IllegalStateException(what + " needs the PyTorch set up by scripts/setup-pytorch.sh"
          + (why != null ? " (" + why + ")" : " (this run uses the bundled CPU build)"));
    }
  }

  /** A tensor returned by the library, owned by {@code like}'s manager. */
  static PtNDArray wrap(NDArray like, long handle) {
    return new PtNDArray((PtNDManager) like.getManager(), handle);
  }

  static long handle(NDArray a) {
    return ((PtNDArray) a).getHandle();
  }

  /** {@code a.to(type)} recorded by autograd: gradients flow back into {@code a}. */
  public static NDArray castWithGrad(NDArray a, DataType type) {
    return wrap(a, castWithGrad(handle(a), type.ordinal()));
  }

  /**
   * Fused softmax(q k^T * scale + mask) v (flash or memory-efficient kernels on CUDA), differentiable.
   *
   * @param q (B, H, T, D)
   * @param k (B, Hkv, S, D), likewise v; Hkv may divide H (grouped-query attention)
   * @param mask additive (B, 1, T, S); null: causal (the lower triangle), what the flash kernels do fastest
   */
  public static NDArray attention(NDArray q, NDArray k, NDArray v, NDArray mask, double scale) {
    boolean gqa = q.getShape().get(1) != k.getShape().get(1);
    return wrap(q, attention(handle(q), handle(k), handle(v), mask == null ? 0 : handle(mask), scale, mask == null,
        gqa));
  }

  /**
   * One decoding step's attention on the CPU, float32, without autograd: softmax(q k^T + bias) v with one query token
   * per row, as loops over each row's keys instead of batched matmuls over B * Hkv tiny matrices.
   *
   * @param q (B, 1, H, D), scale applied
   * @param k (B, Hkv, S, D), likewise v; Hkv divides H
   * @param bias additive (B, 1, 1, S)
   * @return (B, 1, H * D)
   */
  public static NDArray decodeAttention(NDArray q, NDArray k, NDArray v, NDArray bias) {
    return wrap(q, decodeAttention(handle(q), handle(k), handle(v), handle(bias)));
  }

  /** x * sigmoid(x), one kernel forward and one backward, differentiable. */
  public static NDArray silu(NDArray x) {
    return wrap(x, silu(handle(x)));
  }

  /** The 2-norm over all the tensors, as one float (torch.nn.utils.clip_grad_norm_'s total norm). */
  public static double totalNorm(java.util.List<NDArray> tensors) {
    try (NDArray n = wrap(tensors.get(0), totalNorm(handles(tensors)))) {
      return n.getFloat();
    }
  }

  /**
   * One AdamW update of a parameter group as torch.optim.AdamW(fused=True), in place: {@code step} is the step
   * number after this update, gradients are divided by {@code gradDivisor} first (1 = unchanged).
   */
  public static void adamw(java.util.List<NDArray> params, java.util.List<NDArray> grads, java.util.List<NDArray> m,
      java.util.List<NDArray> v, long step, double lr, double beta1, double beta2, double weightDecay, double eps,
      double gradDivisor) {
    adamw(handles(params), handles(grads), handles(m), handles(v), step, lr, beta1, beta2, weightDecay, eps,
        gradDivisor);
  }

  private static long[] handles(java.util.List<NDArray> a) {
    long[] h = new long[a.size()];
    for (int i = 0; i < h.length; i++) {
      h[i] = handle(a.get(i));
    }
    return h;
  }

  /** Copies a direct buffer into {@code dst}'s own storage (same device address afterwards). */
  public static void copyFromHost(NDArray dst, ByteBuffer src) {
    copyFromHost(handle(dst), src);
  }

  /** {@code dst.copy_(src)}: same storage afterwards, so a captured graph that reads dst sees the new values. */
  public static void copyInto(NDArray dst, NDArray src) {
    copyInto(handle(dst), handle(src));
  }

  private static native int abiVersion();

  // ---- c10d collectives (see io.grpo4j.trainer.distributed.ProcessGroup)

  /** 0: built without c10d; 1: Gloo; 2: Gloo and NCCL. */
  public static native int collectives();

  /** Joins a process group (rank 0 serves the TCPStore); returns its handle. */
  public static native long groupInit(String backend, String addr, int port, int rank, int world, int timeoutSeconds);

  /** In place, every rank's tensor: op 0 = sum, 1 = max. */
  public static native void allReduce(long group, long tensor, int op);

  public static native void broadcast(long group, long tensor, int root);

  public static native void barrier(long group);

  public static native void groupFree(long group);

  public static native String torchVersion();

  public static native boolean builtWithCuda();

  public static native String cudaVersion();

  public static native int cudaDeviceCount();

  public static native String cudaDeviceName(int device);

  /** {allocated now, allocated peak, reserved now, reserved peak} in bytes. */
  public static native long[] cudaMemory(int device);

  public static native void cudaResetPeak(int device);

  public static native void synchronize(int device);

  /** "highest" (plain fp32) or "high" (TF32 tensor cores). */
  public static native void setFloat32MatmulPrecision(String mode);

  private static native long castWithGrad(long handle, int dtype);

  private static native long decodeAttention(long q, long k, long v, long bias);

  private static native long attention(long q, long k, long v, long mask, double scale, boolean causal,
      boolean gqa);

  private static native long silu(long x);

  private static native long totalNorm(long[] tensors);

  private static native void adamw(long[] params, long[] grads, long[] m, long[] v, double step, double lr,
      double beta1, double beta2, double weightDecay, double eps, double gradDivisor);

  private static native void copyFromHost(long handle, ByteBuffer buffer);

  private static native void copyInto(long dst, long src);

  static native long graphNew(int device);

  static native void graphCapture(long graph);

  static native void graphEnd(long graph, boolean ok);

  static native void graphReplay(long graph);

  static native void graphFree(long graph);
}
