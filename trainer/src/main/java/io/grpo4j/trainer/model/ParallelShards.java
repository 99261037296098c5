package io.grpo4j.trainer.model;

import ai.djl.pytorch.jni.JniUtils;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Data parallelism inside one process: a minibatch's rows are split into shards whose forward + backward run at the
 * same time, one Java thread per core, each with the process's intra-op thread count (one, when chosen
 * automatically); gradients meet in the parameters' {@code .grad} (PyTorch accumulates them under a per-tensor
 * lock). On a small model this keeps every core busy on whole ops, where PyTorch's own intra-op threads split ops
 * too small to pay for the hand-off (measured on tiny-qwen2, 32 x 44 tokens: the training phase takes about 80% of
 * its one-thread time with 2 shards, about 85% with 2 intra-op threads).
 *
 * <p>Autograd's grad mode is per thread in PyTorch, so each shard switches it on for itself (DJL's
 * GradientCollector allows one collector per process and cannot be used here).
 */
public final class ParallelShards {
  private static final int CORES = java.lang.Runtime.getRuntime().availableProcessors();
  private static final ExecutorService POOL = Executors.newFixedThreadPool(Math.max(1, CORES - 1), r -> {
    Thread t = new Thread(r, "grpo4j-shard");
    t.setDaemon(true);
    return t;
  });
  private static final ThreadLocal<Integer> TEAM_SIZE = ThreadLocal.withInitial(() -> 0);

  private ParallelShards() {}

  /**
   * How many shards a minibatch of {@code rows} rows gets: {@code requested} when > 0, else one per core when the
   * model runs on the CPU with a single intra-op thread (small models) and every shard gets at least 2 rows.
   */
  public static int count(CausalLM model, int rows, int requested) {
    if (model.adapters() != null || model.gradientCheckpointing()) {
      return 1; // shard replicas alias the base weights only: adapters and checkpoints stay on one thread
    }
    int n = requested > 0 ? requested
        : model.device().isGpu() || Runtime.intraOpThreads() != 1 ? 1 : Math.min(CORES, rows / 2);
    return Math.max(1, Math.min(n, rows));
  }

  /** Sequences a sampling shard needs to pay for its thread (see {@link #forInference}). */
  static final int MIN_SAMPLING_ROWS = 32;

  /**
   * How many shards sampling (which only reads the weights) gets over {@code requests} requests of {@code rows}
   * sequences in all: one per core when the model runs on the CPU with a single intra-op thread, as {@link #count}
   * for training, and at least {@link #MIN_SAMPLING_ROWS} sequences each. Measured here: 8 prompts x 8 on the
   * quickstart's model, GRPO steps 23% shorter with 2 shards; 4 prompts x 8 on tiny-qwen2, no gain. Adapters are fine
   * here: nothing writes a gradient.
   */
  public static int forInference(CausalLM model, int requests, int rows) {
    int n = model.device().isGpu() || Runtime.intraOpThreads() != 1 ? 1
        : Math.min(CORES, Math.min(requests, rows / MIN_SAMPLING_ROWS));
    return Math.max(1, n);
  }

  /**
   * Runs the tasks, the first on the calling thread, with autograd on or off in each, and returns their results in
   * order; waits for all of them, even when one fails, then rethrows the first failure (unchecked).
   */
  public static <T> List<T> run(List<Callable<T>> tasks, boolean grad) {
    List<Future<T>> futures = new ArrayList<>();
    for (int i = 1; i < tasks.size(); i++) {
      Callable<T> task = tasks.get(i);
      futures.add(POOL.submit(() -> {
        int threads = Runtime.intraOpThreads();
        if (TEAM_SIZE.get() != threads) {
          // OpenMP's team size is per thread: a new thread would start from the core count
          JniUtils.setNumThreads(threads);
          TEAM_SIZE.set(threads);
        }
        return withGradMode(task, grad);
      }));
    }
    List<T> out = new ArrayList<>();
    Exception first = null;
    try {
      out.add(withGradMode(tasks.get(0), grad));
    } catch (Exception e) {
      first = e;
    }
    boolean interrupted = false;
    for (Future<T> f : futures) { // never leave a shard running: the caller closes the memory it uses
      while (true) {
        try {
          out.add(f.get());
          break;
        } catch (InterruptedException e) {
          interrupted = true; // keep waiting; the interrupt is restored below
        } catch (ExecutionException e) {
          if (first == null) {
            first = e.getCause() instanceof Exception ex ? ex : new RuntimeException(e.getCause());
          }
          break;
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    if (first instanceof RuntimeException e) {
      throw e;
    }
    if (first != null) {
      throw new IllegalStateException(first);
    }
    return out;
  }

  private static <T> T withGradMode(Callable<T> task, boolean grad) throws Exception {
    boolean before = JniUtils.isGradMode();
    JniUtils.setGradMode(grad);
    try {
      return task.call();
    } finally {
      JniUtils.setGradMode(before);
    }
  }
}
