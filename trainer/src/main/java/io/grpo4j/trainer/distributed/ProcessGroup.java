package io.grpo4j.trainer.distributed;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import io.grpo4j.trainer.device.NativeTorch;

/**
 * The ranks of a data-parallel run, joined through PyTorch's c10d (grpo4j's JNI library): a TCPStore rendezvous at
 * MASTER_ADDR:MASTER_PORT and a Gloo (CPU tensors) or NCCL (CUDA tensors) process group, the layer DDP and FSDP use.
 * Collectives work in place on DJL tensors. A single process gets {@link #single()}, whose collectives do nothing,
 * so callers need no second code path.
 */
public final class ProcessGroup implements AutoCloseable {
  private final DistributedEnv env;
  private final long handle; // 0 for a single process
  private final NDManager manager; // for host values' round trips

  private ProcessGroup(DistributedEnv env, long handle, NDManager manager) {
    this.env = env;
    this.handle = handle;
    this.manager = manager;
  }

  public static ProcessGroup single() {
    return new ProcessGroup(DistributedEnv.SINGLE, 0, null);
  }

  /**
   * Joins the group described by {@code env}.
   *
   * @param backend gloo | nccl | auto (NCCL for CUDA tensors when built with it, else Gloo)
   * @param manager where host values travel from (its device decides: NCCL needs CUDA tensors)
   */
  public static ProcessGroup join(DistributedEnv env, String backend, int timeoutSeconds, NDManager manager) {
    if (!env.distributed()) {
      return single();
    }
    NativeTorch.require("training on " + env.worldSize() + " ranks (c10d collectives)");
    int have = NativeTorch.collectives();
    if (have == 0) {
      throw new IllegalStateException("grpo4j's library was built without c10d collectives; run"
          + " scripts/setup-pytorch.sh again");
    }
    boolean gpu = manager.getDevice().isGpu();
    String b = backend.equals("auto") ? (gpu && have >= 2 ? "nccl" : "gloo") : backend;
    if (b.equals("nccl") && (have < 2 || !gpu)) {
      throw new IllegalStateException("distributed.backend: nccl needs CUDA tensors and a build with NCCL ("
          + (gpu ? "this build has none: scripts/setup-pytorch.sh found no nccl.h" : "this run is on the CPU: use gloo")
          + ")");
    }
    long h = NativeTorch.groupInit(b, env.masterAddr(), env.masterPort(), env.rank(), env.worldSize(),
        timeoutSeconds);
    return new ProcessGroup(env, h, manager);
  }

  public int rank() {
    return env.rank();
  }

  public int worldSize() {
    return env.worldSize();
  }

  public boolean leader() {
    return env.rank() == 0;
  }

  public boolean distributed() {
    return handle != 0;
  }

  /** Sums {@code a} over the ranks, in place. */
  public void allReduceSum(NDArray a) {
    if (handle != 0) {
      NativeTorch.allReduce(handle, ((PtNDArray) a).getHandle(), 0);
    }
  }

  /** Every rank's values summed, elementwise (float64 on the wire). */
  public double[] sum(double... values) {
    return reduce(values, 0);
  }

  /** The elementwise maximum over the ranks. */
  public double[] max(double... values) {
    return reduce(values, 1);
  }

  private double[] reduce(double[] values, int op) {
    if (handle == 0 || values.length == 0) {
      return values.clone();
    }
    try (NDManager m = manager.newSubManager()) {
      NDArray a = m.create(values);
      NativeTorch.allReduce(handle, ((PtNDArray) a).getHandle(), op);
      return a.toDoubleArray();
    }
  }

  /** The ranks' arrays side by side (rank order), each {@code values.length} long: an all-gather. */
  public double[] gather(double[] values) {
    if (handle == 0) {
      return values.clone();
    }
    int n = values.length;
    double[] wide = new double[n * worldSize()];
    System.arraycopy(values, 0, wide, n * rank(), n);
    return sum(wide);
  }

  /** Makes every rank's {@code a} equal rank {@code root}'s. */
  public void broadcast(NDArray a, int root) {
    if (handle != 0) {
      NativeTorch.broadcast(handle, ((PtNDArray) a).getHandle(), root);
    }
  }

  public void barrier() {
    if (handle != 0) {
      NativeTorch.barrier(handle);
    }
  }

  @Override
  public void close() {
    if (handle != 0) {
      NativeTorch.groupFree(handle);
    }
  }
}
