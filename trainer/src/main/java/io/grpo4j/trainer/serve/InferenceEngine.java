package io.grpo4j.trainer.serve;

import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.ModelConfig;
import io.grpo4j.trainer.model.ParameterLayout;
import io.grpo4j.trainer.model.Runtime;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The model behind {@code grpo serve}: one worker thread owns the model and runs every batch, so DJL sees a single
 * caller. Requests that arrive while a batch runs (or within {@code batchWaitMillis} of the first) are sampled
 * together in the next batch, up to {@code maxBatchRows} sequences: request-level batching, where each prompt is
 * prefilled once and its n completions share that cache. A weight reload waits in the same queue, so it never
 * lands in the middle of a batch and requests queued after it see the new weights.
 */
public final class InferenceEngine implements AutoCloseable {
  /** Prompts with their sampling settings; {@code stops} are stop strings (may be empty). */
  public record Job(List<Sampler.Request> requests, List<String> stops) {
    int rows() {
      return requests.stream().mapToInt(Sampler.Request::n).sum();
    }
  }

  /** Served so far: requests, generated tokens, batches and the largest batch in sequences. */
  public record Stats(long jobs, long tokens, long batches, long maxBatchRows, long reloads, long inFlight,
      double busySeconds) {}

  private record Pending(Job job, CompletableFuture<List<Generation>> result) {}

  private record Reload(Path dir, CompletableFuture<String> result) {}

  private final NDManager root;
  private final HfTokenizer tokenizer;
  private final int maxBatchRows;
  private final long batchWaitNanos;
  private final BlockingQueue<Object> queue = new LinkedBlockingQueue<>();
  private final Thread worker;
  private final CausalLM model;
  private volatile Path weights;
  private volatile long weightsVersion;
  private volatile boolean closed;
  private final Sampler sampler;
  private final AtomicLong jobs = new AtomicLong();
  private final AtomicLong tokens = new AtomicLong();
  private final AtomicLong batches = new AtomicLong();
  private final AtomicLong maxRows = new AtomicLong();
  private final AtomicLong inFlight = new AtomicLong(); // submitted, not yet answered
  private final AtomicLong busyNanos = new AtomicLong(); // time spent sampling

  /** @param threads PyTorch intra-op threads; 0 = the size-based default */
  public InferenceEngine(Path modelDir, String device, int threads, int maxBatchRows, int batchWaitMillis)
      throws java.io.IOException {
    this(modelDir, device, "auto", threads, maxBatchRows, batchWaitMillis);
  }

  /** @param precision auto | fp32 | tf32 | bf16 (see {@link io.grpo4j.trainer.model.Precision}) */
  public InferenceEngine(Path modelDir, String device, String precision, int threads, int maxBatchRows,
      int batchWaitMillis) throws java.io.IOException {
    if (maxBatchRows < 1) {
      throw new IllegalArgumentException("--max-batch must be >= 1, got " + maxBatchRows);
    }
    this.root = NDManager.newBaseManager(Runtime.device(device));
    HfCheckpoint ckpt = HfCheckpoint.open(modelDir);
    Runtime.userThreads(threads);
    Runtime.threadsFor(ckpt.config());
    this.model = ckpt.loadModel(root.newSubManager(),
        io.grpo4j.trainer.model.Precision.parse("--precision", precision, root.getDevice()));
    this.tokenizer = HfTokenizer.load(modelDir);
    this.weights = modelDir.toAbsolutePath().normalize();
    this.maxBatchRows = maxBatchRows;
    this.batchWaitNanos = TimeUnit.MILLISECONDS.toNanos(batchWaitMillis);
    this.sampler = new Sampler(model, tokenizer.padTokenId());
    this.worker = new Thread(this::loop, "grpo-serve-engine");
    worker.setDaemon(true);
    worker.start();
  }

  /** Most sequences sampled in one batch (--max-batch); a prompt's n completions never split across batches. */
  public int maxBatchRows() {
    return maxBatchRows;
  }

  public HfTokenizer tokenizer() {
    return tokenizer;
  }

  public ModelConfig config() {
    return model.config();
  }

  public Path weights() {
    return weights;
  }

  /** How many times the weights were reloaded. */
  public long weightsVersion() {
    return weightsVersion;
  }

  public Stats stats() {
    return new Stats(jobs.get(), tokens.get(), batches.get(), maxRows.get(), weightsVersion, inFlight.get(),
        busyNanos.get() / 1e9);
  }

  /** Queues a job; the future completes with its generations (request-major, n per request). */
  public CompletableFuture<List<Generation>> submit(Job job) {
    CompletableFuture<List<Generation>> f = new CompletableFuture<>();
    if (closed) {
      f.completeExceptionally(new ApiError(503, "service_unavailable", null, "the server is shutting down"));
      return f;
    }
    inFlight.incrementAndGet();
    f.whenComplete((r, e) -> inFlight.decrementAndGet());
    queue.add(new Pending(job, f));
    return f;
  }

  /** Queues a reload of the weights from an HF folder; completes with a message once requests see them. */
  public CompletableFuture<String> reload(Path dir) {
    CompletableFuture<String> f = new CompletableFuture<>();
    queue.add(new Reload(dir, f));
    return f;
  }

  private void loop() {
    while (!closed) {
      Object first;
      try {
        first = queue.take();
      } catch (InterruptedException e) {
        break;
      }
      if (first instanceof Reload r) {
        doReload(r);
        continue;
      }
      List<Pending> batch = new ArrayList<>();
      batch.add((Pending) first);
      int rows = ((Pending) first).job().rows();
      long deadline = System.nanoTime() + batchWaitNanos;
      while (rows < maxBatchRows) {
        Object next = queue.peek();
        if (next == null) {
          long left = deadline - System.nanoTime();
          if (left <= 0) {
            break;
          }
          try {
            Thread.sleep(0, (int) Math.min(left, 200_000)); // poll briefly for requests sent at the same moment
          } catch (InterruptedException e) {
            break;
          }
          continue;
        }
        if (!(next instanceof Pending p) || rows + p.job().rows() > maxBatchRows) {
          break; // a reload, or a job that does not fit, starts the next round
        }
        queue.poll();
        batch.add(p);
        rows += p.job().rows();
      }
      run(batch, rows);
    }
    drain();
  }

  private void run(List<Pending> batch, int rows) {
    List<Sampler.Request> all = new ArrayList<>();
    StopStrings[] stops = new StopStrings[rows];
    int row = 0;
    boolean anyStops = false;
    for (Pending p : batch) {
      all.addAll(p.job().requests());
      for (int i = 0; i < p.job().rows(); i++, row++) {
        if (!p.job().stops().isEmpty()) {
          stops[row] = new StopStrings(tokenizer, p.job().stops());
          anyStops = true;
        }
      }
    }
    long t0 = System.nanoTime();
    try {
      // one sampler call per at most maxBatchRows sequences (only a single oversized request needs several)
      List<Generation> gens = new ArrayList<>(rows);
      int firstRow = 0;
      for (int from = 0; from < all.size(); ) {
        int to = from;
        int chunkRows = 0;
        while (to < all.size() && (to == from || chunkRows + all.get(to).n() <= maxBatchRows)) {
          chunkRows += all.get(to).n();
          to++;
        }
        int base = firstRow;
        int reqBase = from;
        for (Generation g : sampler.generate(all.subList(from, to), null,
            anyStops ? (r, tok) -> stops[base + r] != null && stops[base + r].accept(tok) : null)) {
          gens.add(g.withPromptIndex(g.promptIndex() + reqBase));
        }
        firstRow += chunkRows;
        from = to;
      }
      busyNanos.addAndGet(System.nanoTime() - t0);
      int from = 0;
      int reqBase = 0;
      for (Pending p : batch) {
        int n = p.job().rows();
        List<Generation> mine = new ArrayList<>(n);
        for (Generation g : gens.subList(from, from + n)) {
          mine.add(g.withPromptIndex(g.promptIndex() - reqBase));
          tokens.addAndGet(g.completionIds().length);
        }
        from += n;
        reqBase += p.job().requests().size();
        jobs.incrementAndGet();
        p.result().complete(mine);
      }
      batches.incrementAndGet();
      maxRows.accumulateAndGet(rows, Math::max);
    } catch (RuntimeException | Error e) {
      for (Pending p : batch) {
        p.result().completeExceptionally(e);
      }
    }
  }

  private void doReload(Reload r) {
    try {
      HfCheckpoint ckpt = HfCheckpoint.open(r.dir());
      ModelConfig now = model.config();
      ModelConfig next = ckpt.config();
      Map<String, long[]> layout = ParameterLayout.of(now);
      Map<String, long[]> nextLayout = ParameterLayout.of(next);
      boolean sameShape = now.architecture() == next.architecture() && layout.keySet().equals(nextLayout.keySet())
          && layout.keySet().stream().allMatch(k -> java.util.Arrays.equals(layout.get(k), nextLayout.get(k)))
          && java.util.Objects.equals(now.rope(), next.rope()) && now.rmsNormEps() == next.rmsNormEps();
      if (!sameShape) {
        throw new ApiError(400, "invalid_request_error", "model_path", r.dir() + ": config.json describes another"
            + " model (architecture, tensor shapes, rope or norm settings) than the one being served; reload only"
            + " swaps weights, restart grpo serve to change models");
      }
      // read every tensor before touching the model, so a file that fails half-way leaves the old weights whole;
      // then copy in place (as vLLM's reload_weights does): same buffers, no new allocations, no cold first batch
      Map<String, float[]> values = new LinkedHashMap<>();
      for (var e : ParameterLayout.of(next).entrySet()) {
        values.put(e.getKey(), ckpt.tensors().get(e.getKey()).toFloats());
      }
      model.overwriteWeights(values);
      weights = r.dir().toAbsolutePath().normalize();
      weightsVersion++;
      r.result().complete("loaded " + weights + " (version " + weightsVersion + ")");
    } catch (ApiError e) {
      r.result().completeExceptionally(e);
    } catch (Exception e) {
      r.result().completeExceptionally(new ApiError(400, "invalid_request_error", "model_path",
          "cannot load weights: " + e.getMessage() + "; still serving " + weights));
    }
  }

  private void drain() {
    Object o;
    while ((o = queue.poll()) != null) {
      ApiError e = new ApiError(503, "service_unavailable", null, "the server is shutting down");
      if (o instanceof Pending p) {
        p.result().completeExceptionally(e);
      } else if (o instanceof Reload r) {
        r.result().completeExceptionally(e);
      }
    }
  }

  @Override
  public void close() {
    closed = true;
    worker.interrupt();
    try {
      worker.join(30_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    drain();
    tokenizer.close();
    root.close();
  }
}
