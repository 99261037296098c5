package io.grpo4j.trainer.serve;

import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.device.CudaGraph;
import io.grpo4j.trainer.generation.ContinuousBatcher;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.PromptLogprobs;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.ModelConfig;
import io.grpo4j.trainer.model.ParameterLayout;
import io.grpo4j.trainer.model.Precision;
import io.grpo4j.trainer.model.Runtime;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The model behind {@code grpo serve}: one worker thread owns the model, so DJL sees a single caller. Two ways to
 * batch requests ({@link Batching}):
 *
 * <ul>
 *   <li>continuous (the default): a request joins the batch being decoded at the next step and leaves it when it
 *       finishes, as in vLLM and SGLang ({@link ContinuousBatcher}); on CUDA its steps replay captured graphs over
 *       fixed slots ({@link SlotDecoding});
 *   <li>request: what arrives while a batch runs forms the next batch, decoded with static shapes and CUDA graphs
 *       (the default on a GPU without grpo4j's native library, where continuous steps would run eagerly). Batches
 *       that ask for top log-probs or prompt log-probs are decoded by the continuous batcher, which computes them.
 * </ul>
 *
 * A weight reload waits in the same queue: it never lands in the middle of a sequence, and requests queued after it
 * see the new weights.
 */
public final class InferenceEngine implements AutoCloseable {
  /** How requests share the model. */
  public enum Batching {
    CONTINUOUS,
    REQUEST;

    static Batching parse(String s, ai.djl.Device device) {
      return switch (s.toLowerCase(Locale.ROOT)) {
        case "auto" -> device.isGpu() && !CudaGraph.supported(device) ? REQUEST : CONTINUOUS;
        case "continuous" -> CONTINUOUS;
        case "request" -> REQUEST;
        default -> throw new IllegalArgumentException("--batching must be auto, continuous or request, got " + s);
      };
    }
  }

  /**
   * How to serve.
   *
   * @param device cpu | gpu | gpu:N
   * @param precision auto | fp32 | tf32 | bf16 (see {@link Precision})
   * @param threads PyTorch intra-op threads; 0 = the size-based default
   * @param maxBatchRows most sequences decoded at once (--max-batch)
   * @param batchWaitMillis how long an idle engine waits for more requests before it starts
   * @param batching auto | continuous | request
   */
  public record Settings(Path modelDir, String device, String precision, int threads, int maxBatchRows,
      int batchWaitMillis, String batching) {
    /** CPU, automatic precision and batching, 64 rows, 2 ms wait. */
    public static Settings of(Path modelDir) {
      return new Settings(modelDir, "cpu", "auto", 0, 64, 2, "auto");
    }

    public Settings withBatching(String b) {
      return new Settings(modelDir, device, precision, threads, maxBatchRows, batchWaitMillis, b);
    }

    public Settings withMaxBatchRows(int rows) {
      return new Settings(modelDir, device, precision, threads, rows, batchWaitMillis, batching);
    }
  }

  /**
   * Receives a job's output as it is produced (streaming), in order, on the engine's delivery thread ({@link
   * Outbox}), so it must not block; {@link #cancelled} alone is asked on the engine thread.
   */
  public interface Listener {
    /** The prompt log-probs of choice {@code choice} (echo), before its first token. */
    default void prompt(int choice, PromptLogprobs scores) {}

    /** @param top the top alternatives when asked for, else null */
    void token(int choice, long token, float logprob, Map<Long, Float> top);

    /** Choice {@code choice} ended: "stop" or "length". */
    void done(int choice, String reason);

    /** True once the client has gone: the job's sequences end at their next token, freeing their rows. */
    default boolean cancelled() {
      return false;
    }
  }

  /**
   * Prompts with their sampling settings.
   *
   * @param stops stop strings (may be empty)
   * @param topLogprobs alternatives to report per generated token (0 = none)
   * @param promptLogprobs -1: none; else prompt log-probs (echo) with this many alternatives per token
   * @param generate false: score the prompts only (echo with max_tokens 0)
   * @param listener streams the output as it comes, or null
   */
  public record Job(List<Sampler.Request> requests, List<String> stops, int topLogprobs, int promptLogprobs,
      boolean generate, Listener listener) {
    public Job(List<Sampler.Request> requests, List<String> stops) {
      this(requests, stops, 0, -1, true, null);
    }

    int rows() {
      return requests.stream().mapToInt(Sampler.Request::n).sum();
    }

    /** Whether the graph-replayed request path can serve it (it reports the sampled token's log-prob only). */
    boolean plain() {
      return topLogprobs == 0 && promptLogprobs < 0 && generate;
    }
  }

  /**
   * One choice of a job.
   *
   * @param top per generated token its top alternatives, or null when not asked for
   * @param prompt the prompt's log-probs (echo), or null
   */
  public record Completion(Generation generation, List<Map<Long, Float>> top, PromptLogprobs prompt) {}

  /**
   * Served so far.
   *
   * @param decodeSteps decoding steps so far, and {@code rowSteps} the sequences they decoded
   * @param latencyP50Ms median time from a request's arrival to its last token, over the last 4,096 requests
   */
  public record Stats(long jobs, long tokens, long batches, long maxBatchRows, long reloads, long inFlight,
      double busySeconds, String batching, long decodeSteps, long rowSteps, double latencyP50Ms,
      double latencyP99Ms) {
    /** Mean sequences per decoding step: how full the batch was. */
    public double meanRows() {
      return decodeSteps == 0 ? 0 : rowSteps / (double) decodeSteps;
    }
  }

  private static final class Pending {
    final Job job;
    final CompletableFuture<List<Completion>> result;
    final long arrived = System.nanoTime();
    final Completion[] choices;
    int left;

    Pending(Job job, CompletableFuture<List<Completion>> result) {
      this.job = job;
      this.result = result;
      this.choices = new Completion[job.rows()];
      this.left = choices.length;
    }
  }

  private record Reload(Path dir, CompletableFuture<String> result) {}

  private final NDManager root;
  private final HfTokenizer tokenizer;
  private final int maxBatchRows;
  private final long batchWaitNanos;
  private final Batching batching;
  private final BlockingQueue<Object> queue = new LinkedBlockingQueue<>();
  private final Thread worker;
  private final CausalLM model;
  private volatile Path weights;
  private volatile long weightsVersion;
  private volatile boolean closed;
  private final Sampler sampler;
  private final ContinuousBatcher batcher;
  private final AtomicLong jobs = new AtomicLong();
  private final AtomicLong tokens = new AtomicLong();
  private final AtomicLong batches = new AtomicLong();
  private final AtomicLong maxRows = new AtomicLong();
  private final AtomicLong inFlight = new AtomicLong(); // submitted, not yet answered
  private final Outbox outbox = new Outbox("grpo-serve-outbox", inFlight::get); // the engine's deliveries
  private final AtomicLong busyNanos = new AtomicLong(); // time spent sampling
  private final AtomicLong requestSteps = new AtomicLong(); // decoding steps of the request path
  private final AtomicLong requestRowSteps = new AtomicLong();
  private final long[] latencies = new long[4096]; // ring of the last requests' latencies, ns
  private long latencyCount;

  public InferenceEngine(Settings s) throws java.io.IOException {
    if (s.maxBatchRows() < 1) {
      throw new IllegalArgumentException("--max-batch must be >= 1, got " + s.maxBatchRows());
    }
    this.root = NDManager.newBaseManager(Runtime.device(s.device()));
    this.batching = Batching.parse(s.batching(), root.getDevice());
    HfCheckpoint ckpt = HfCheckpoint.open(s.modelDir());
    Runtime.userThreads(s.threads());
    Runtime.threadsFor(ckpt.config());
    this.model = ckpt.loadModel(root.newSubManager(), Precision.parse("--precision", s.precision(), root.getDevice()));
    model.mergeAdapters(); // --model was a PEFT adapter folder: serve the merged model (plain projections)
    this.tokenizer = HfTokenizer.load(s.modelDir());
    this.weights = s.modelDir().toAbsolutePath().normalize();
    this.maxBatchRows = s.maxBatchRows();
    this.batchWaitNanos = TimeUnit.MILLISECONDS.toNanos(s.batchWaitMillis());
    this.sampler = new Sampler(model, tokenizer.padTokenId());
    this.batcher = new ContinuousBatcher(model, tokenizer.padTokenId());
    this.worker = new Thread(batching == Batching.CONTINUOUS ? this::continuousLoop : this::requestLoop,
        "grpo-serve-engine");
    worker.setDaemon(true);
    worker.start();
  }

  /** Most sequences decoded at once (--max-batch). */
  public int maxBatchRows() {
    return maxBatchRows;
  }

  public Batching batching() {
    return batching;
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
    double[] lat = latencyPercentiles(0.50, 0.99);
    // the continuous batcher also serves the request path's top/prompt log-prob batches
    return new Stats(jobs.get(), tokens.get(), batches.get(), maxRows.get(), weightsVersion, inFlight.get(),
        busyNanos.get() / 1e9, batching.name().toLowerCase(Locale.ROOT), batcher.steps() + requestSteps.get(),
        batcher.rowSteps() + requestRowSteps.get(), lat[0], lat[1]);
  }

  private synchronized double[] latencyPercentiles(double... qs) {
    int n = (int) Math.min(latencyCount, latencies.length);
    double[] out = new double[qs.length];
    if (n == 0) {
      return out;
    }
    long[] sorted = Arrays.copyOf(latencies, n);
    Arrays.sort(sorted);
    for (int i = 0; i < qs.length; i++) {
      out[i] = sorted[Math.min(n - 1, (int) Math.ceil(qs[i] * n) - 1)] / 1e6;
    }
    return out;
  }

  private synchronized void recordLatency(long nanos) {
    latencies[(int) (latencyCount++ % latencies.length)] = nanos;
  }

  /** Queues a job; the future completes with its choices (request-major, n per request). */
  public CompletableFuture<List<Completion>> submit(Job job) {
    CompletableFuture<List<Completion>> f = new CompletableFuture<>();
    if (closed) {
      f.completeExceptionally(new ApiError(503, "service_unavailable", null, "the server is shutting down"));
      return f;
    }
    inFlight.incrementAndGet();
    f.whenComplete((r, e) -> inFlight.decrementAndGet());
    queue.add(new Pending(job, f));
    outbox.expect();
    return f;
  }

  /** Queues a reload of the weights from an HF folder; completes with a message once requests see them. */
  public CompletableFuture<String> reload(Path dir) {
    CompletableFuture<String> f = new CompletableFuture<>();
    queue.add(new Reload(dir, f));
    return f;
  }

  // ---- continuous batching

  /** One sequence of a pending job, waiting for room in the running batch. */
  private record Waiting(Pending job, int choice, ContinuousBatcher.Seq seq) {}

  private void continuousLoop() {
    ArrayDeque<Object> waiting = new ArrayDeque<>(); // Waiting sequences and reloads, in arrival order
    while (!closed) {
      try {
        if (batcher.activeRows() == 0 && waiting.isEmpty()) {
          expand(queue.take(), waiting);
          gather(waiting);
        }
        Object o;
        while ((o = queue.poll()) != null) {
          expand(o, waiting);
        }
      } catch (InterruptedException e) {
        break;
      }
      // admit in arrival order while there is room; a reload waits until the running batch has drained. With many
      // sequences running, arrivals are gathered for a few steps (at most ADMIT_WAIT) and prefilled together: one
      // prefill a step would cost a running batch of 64 half again its decoding time
      List<Waiting> admit = new ArrayList<>();
      int running = batcher.activeRows();
      boolean gatherMore = running > 0 && countSequences(waiting) < Math.max(1, running / ADMIT_SHARE)
          && waitingSince(waiting) < ADMIT_WAIT_NANOS && !(waiting.peek() instanceof Reload);
      while (!waiting.isEmpty() && !gatherMore) {
        Object head = waiting.peek();
        if (head instanceof Reload r) {
          if (batcher.activeRows() == 0 && admit.isEmpty()) {
            waiting.poll();
            doReload(r);
            continue;
          }
          break;
        }
        if (batcher.activeRows() + admit.size() >= maxBatchRows) {
          break;
        }
        Waiting w = (Waiting) waiting.poll();
        if (!w.job().result.isDone()) { // a job that already failed sends no more sequences
          admit.add(w);
        }
      }
      long t0 = System.nanoTime();
      if (!admit.isEmpty()) {
        batches.incrementAndGet(); // one prefill
        try {
          batcher.admit(admit.stream().map(Waiting::seq).toList());
        } catch (RuntimeException | Error e) {
          // the prefill runs on its own cache, so the running batch is untouched: only these requests fail
          System.err.println("grpo serve: admitting " + admit.size() + " sequences failed: " + e);
          fail(admit.stream().map(Waiting::job).distinct().toList(), e);
        }
      }
      try {
        batcher.step();
      } catch (RuntimeException | Error e) {
        System.err.println("grpo serve: a decoding step failed, dropping the running batch: " + e);
        batcher.abort("abort"); // the sinks of every running sequence fail their jobs
      }
      busyNanos.addAndGet(System.nanoTime() - t0);
      maxRows.accumulateAndGet(batcher.activeRows(), Math::max);
    }
    batcher.close();
    drain(waiting);
  }

  /** Running sequences per sequence worth a prefill of its own (see continuousLoop). */
  private static final int ADMIT_SHARE = 8;
  private static final long ADMIT_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(10);

  private static int countSequences(ArrayDeque<Object> waiting) {
    int n = 0;
    for (Object o : waiting) {
      n += o instanceof Waiting ? 1 : 0;
    }
    return n;
  }

  /** How long the oldest waiting sequence has waited (0 when none). */
  private static long waitingSince(ArrayDeque<Object> waiting) {
    Object head = waiting.peek();
    return head instanceof Waiting w ? System.nanoTime() - w.job().arrived : 0;
  }

  /** Waits up to the batch wait for requests sent at the same moment, so they share one prefill. */
  private void gather(ArrayDeque<Object> waiting) throws InterruptedException {
    long deadline = System.nanoTime() + batchWaitNanos;
    long left;
    while ((left = deadline - System.nanoTime()) > 0 && waiting.size() < maxBatchRows) {
      Object o = queue.poll(left, TimeUnit.NANOSECONDS);
      if (o == null) {
        break;
      }
      expand(o, waiting);
    }
  }

  /** A job becomes one waiting sequence per choice; a reload stays as it is. */
  private void expand(Object o, ArrayDeque<Object> waiting) {
    if (o instanceof Reload) {
      waiting.add(o);
      return;
    }
    Pending p = (Pending) o;
    int choice = 0;
    for (Sampler.Request q : p.job.requests()) {
      for (int j = 0; j < q.n(); j++, choice++) {
        waiting.add(new Waiting(p, choice, seq(p, choice, q, j)));
      }
    }
  }

  private ContinuousBatcher.Seq seq(Pending p, int choice, Sampler.Request q, int stream) {
    Job job = p.job;
    StopStrings stops = job.stops().isEmpty() ? null : new StopStrings(tokenizer, job.stops());
    ChoiceSink sink = new ChoiceSink(p, choice, q.params().maxNewTokens());
    Listener l = job.listener();
    ContinuousBatcher.StopCheck check = stops == null && l == null ? null
        : tok -> l != null && l.cancelled() || stops != null && stops.accept(tok);
    return new ContinuousBatcher.Seq(q.prompt(), q.params(), q.seed(), stream, job.topLogprobs(),
        job.promptLogprobs(), job.generate(), sink, check);
  }

  /** Collects one choice's tokens, streams them, and completes the job with its last choice. */
  private final class ChoiceSink implements ContinuousBatcher.Sink {
    final Pending p;
    final int choice;
    long[] ids;
    float[] logps;
    final List<Map<Long, Float>> top;
    PromptLogprobs prompt;
    int n;

    ChoiceSink(Pending p, int choice, int maxTokens) {
      this.p = p;
      this.choice = choice;
      int cap = p.job.generate() ? maxTokens : 0;
      this.ids = new long[cap];
      this.logps = new float[cap];
      this.top = p.job.topLogprobs() > 0 ? new ArrayList<>() : null;
    }

    @Override
    public void prompt(PromptLogprobs scores) {
      prompt = scores;
      Listener l = p.job.listener();
      if (l != null) {
        outbox.post(() -> l.prompt(choice, scores));
      }
    }

    @Override
    public void token(long token, float logprob, Map<Long, Float> alternatives) {
      ids[n] = token;
      logps[n] = logprob;
      n++;
      if (top != null) {
        top.add(alternatives);
      }
      Listener l = p.job.listener();
      if (l != null) {
        outbox.post(() -> l.token(choice, token, logprob, alternatives));
      }
    }

    @Override
    public void done(String reason) {
      if ("abort".equals(reason)) {
        fail(List.of(p), closed ? new ApiError(503, "service_unavailable", null, "the server is shutting down")
            : new ApiError(500, "internal_server_error", null, "decoding failed; the request was dropped (see the"
                + " server log)"));
        return;
      }
      Listener l = p.job.listener();
      if (l != null) {
        outbox.post(() -> l.done(choice, reason));
      }
      Generation g = new Generation(requestOf(p.job, choice), Arrays.copyOf(ids, n), reason, Arrays.copyOf(logps, n));
      p.choices[choice] = new Completion(g, top, prompt);
      tokens.addAndGet(n);
      if (--p.left == 0) {
        finish(p);
      }
    }
  }

  private static int requestOf(Job job, int choice) {
    int c = 0;
    for (int i = 0; i < job.requests().size(); i++) {
      c += job.requests().get(i).n();
      if (choice < c) {
        return i;
      }
    }
    throw new IllegalArgumentException("choice " + choice + " of a job with " + c + " choices");
  }

  private void finish(Pending p) {
    if (p.result.isDone()) {
      return;
    }
    jobs.incrementAndGet();
    recordLatency(System.nanoTime() - p.arrived);
    List<Completion> choices = List.of(p.choices);
    outbox.post(() -> p.result.complete(choices));
  }

  private void fail(List<Pending> ps, Throwable e) {
    for (Pending p : ps) {
      outbox.post(() -> p.result.completeExceptionally(e));
    }
  }

  // ---- request-level batching (the GPU path)

  private void requestLoop() {
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
      int rows = ((Pending) first).job.rows();
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
        if (!(next instanceof Pending p) || rows + p.job.rows() > maxBatchRows) {
          break; // a reload, or a job that does not fit, starts the next round
        }
        queue.poll();
        batch.add(p);
        rows += p.job.rows();
      }
      long t0 = System.nanoTime();
      if (batch.stream().allMatch(p -> p.job.plain())) {
        runRequests(batch, rows);
      } else {
        runContinuous(batch);
      }
      busyNanos.addAndGet(System.nanoTime() - t0);
      batches.incrementAndGet();
      maxRows.accumulateAndGet(rows, Math::max);
    }
    drain(new ArrayDeque<>());
  }

  /** A batch that wants top or prompt log-probs: admitted together to the continuous batcher and run out. */
  private void runContinuous(List<Pending> batch) {
    List<ContinuousBatcher.Seq> seqs = new ArrayList<>();
    for (Pending p : batch) {
      int choice = 0;
      for (Sampler.Request q : p.job.requests()) {
        for (int j = 0; j < q.n(); j++, choice++) {
          seqs.add(seq(p, choice, q, j));
        }
      }
    }
    try {
      for (int from = 0; from < seqs.size(); ) {
        int to = Math.min(seqs.size(), from + maxBatchRows);
        batcher.admit(seqs.subList(from, to));
        while (batcher.step()) {
          // decode until this part of the batch is done
        }
        from = to;
      }
    } catch (RuntimeException | Error e) {
      batcher.abort("abort");
      fail(batch, e);
    }
  }

  private void runRequests(List<Pending> batch, int rows) {
    List<Sampler.Request> all = new ArrayList<>();
    StopStrings[] stops = new StopStrings[rows];
    Listener[] listeners = new Listener[rows];
    int[] choiceOf = new int[rows];
    int row = 0;
    for (Pending p : batch) {
      for (Sampler.Request q : p.job.requests()) {
        // streaming needs each token's log-prob as it comes
        all.add(p.job.listener() == null || q.logprobs() ? q
            : new Sampler.Request(q.prompt(), q.n(), q.params(), q.seed(), true));
      }
      for (int i = 0; i < p.job.rows(); i++, row++) {
        if (!p.job.stops().isEmpty()) {
          stops[row] = new StopStrings(tokenizer, p.job.stops());
        }
        listeners[row] = p.job.listener();
        choiceOf[row] = i;
      }
    }
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
        Sampler.TokenListener streaming = (r, tok, lp) -> {
          Listener l = listeners[base + r];
          if (l != null) {
            int choice = choiceOf[base + r];
            outbox.post(() -> l.token(choice, tok, lp, null));
          }
        };
        Sampler.StopCheck check = (r, tok) -> listeners[base + r] != null && listeners[base + r].cancelled()
            || stops[base + r] != null && stops[base + r].accept(tok);
        for (Generation g : sampler.generate(all.subList(from, to), streaming, check)) {
          gens.add(g.withPromptIndex(g.promptIndex() + reqBase));
        }
        long steps = 0;
        for (Generation g : gens.subList(base, gens.size())) {
          steps = Math.max(steps, g.completionIds().length);
        }
        requestSteps.addAndGet(steps);
        requestRowSteps.addAndGet(sampler.lastTiming().generatedTokens());
        firstRow += chunkRows;
        from = to;
      }
      int from = 0;
      int reqBase = 0;
      for (Pending p : batch) {
        int n = p.job.rows();
        for (int c = 0; c < n; c++) {
          Generation g = gens.get(from + c);
          Listener l = p.job.listener();
          if (l != null) {
            int choice = c;
            String reason = g.finishReason();
            outbox.post(() -> l.done(choice, reason));
          }
          Generation mine = g.withPromptIndex(g.promptIndex() - reqBase);
          if (!p.job.requests().get(mine.promptIndex()).logprobs()) {
            mine = new Generation(mine.promptIndex(), mine.completionIds(), mine.finishReason());
          }
          p.choices[c] = new Completion(mine, null, null);
          tokens.addAndGet(g.completionIds().length);
        }
        from += n;
        reqBase += p.job.requests().size();
        finish(p);
      }
    } catch (RuntimeException | Error e) {
      fail(batch, e);
    }
  }

  // ---- weights

  private void doReload(Reload r) {
    try {
      HfCheckpoint ckpt = HfCheckpoint.open(r.dir());
      ModelConfig now = model.config();
      ModelConfig next = ckpt.config();
      Map<String, long[]> layout = ParameterLayout.of(now);
      Map<String, long[]> nextLayout = ParameterLayout.of(next);
      boolean sameShape = now.architecture() == next.architecture() && layout.keySet().equals(nextLayout.keySet())
          && layout.keySet().stream().allMatch(k -> Arrays.equals(layout.get(k), nextLayout.get(k)))
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
      if (ckpt.adapter() != null) { // a PEFT adapter folder: its base with the adapters folded in
        io.grpo4j.trainer.model.LoraAdapters.mergeInto(values, ckpt.adapter(), next, root);
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

  private void drain(ArrayDeque<Object> waiting) {
    ApiError e = new ApiError(503, "service_unavailable", null, "the server is shutting down");
    Object o;
    while ((o = queue.poll()) != null) {
      waiting.add(o);
    }
    for (Object w : waiting) {
      if (w instanceof Pending p) {
        p.result.completeExceptionally(e);
      } else if (w instanceof Waiting s) {
        s.job().result.completeExceptionally(e);
      } else if (w instanceof Reload r) {
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
    drain(new ArrayDeque<>());
    outbox.close();
    tokenizer.close();
    root.close();
  }
}
