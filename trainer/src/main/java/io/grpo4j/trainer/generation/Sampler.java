package io.grpo4j.trainer.generation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.model.AttentionBias;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HostStaging;
import io.grpo4j.trainer.model.KvCache;
import io.grpo4j.trainer.model.NoGrad;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Batched generation from left-padded prompts with a KV cache. Each prompt is prefilled once and its cache is
 * repeated for its {@code n} completions (a GRPO group never recomputes its prompt); finished completions leave
 * the batch so the rest decode with fewer rows. Runs without autograd. Not thread-safe: one Sampler per thread.
 */
public final class Sampler {
  private final CausalLM model;
  private final int padId;
  private Timing lastTiming = new Timing(0, 0, 0, 0);
  private final HostStaging staging = new HostStaging(3); // ids, positions, bias
  private final DeviceDecoder device; // null: the host path

  /** Where the last call's time went, in nanoseconds: prompt prefill, decode forwards, CPU token picking. */
  public record Timing(long prefillNanos, long decodeNanos, long pickNanos, long generatedTokens) {}

  /**
   * Receives each token as it is picked (for streaming output); row = first row of its request + sample. The
   * log-prob is that of {@link Generation#logprobs()}, NaN when the request did not ask for log-probs.
   */
  @FunctionalInterface
  public interface TokenListener {
    void onToken(int row, long token, float logprob);
  }

  /** Decodes on the device for a GPU model, on the host for a CPU one. */
  public Sampler(CausalLM model, int padId) {
    this(model, padId, DeviceDecoder.defaultFor(model.device()));
  }

  /**
   * @param onDevice true: static shapes, tokens picked on the device, CUDA graphs when available (the GPU path);
   *     false: finished rows leave the batch and tokens are picked on the host (fastest for small CPU models)
   */
  public Sampler(CausalLM model, int padId, boolean onDevice) {
    this.model = model;
    this.padId = padId;
    this.device = onDevice ? new DeviceDecoder(model, padId) : null;
  }

  /** Whether this sampler decodes on the device (static shapes, device-side picking) rather than on the host. */
  public boolean decodesOnDevice() {
    return device != null;
  }

  /** Whether device decoding replays captured CUDA graphs. */
  public boolean usesCudaGraphs() {
    return device != null && device.usesGraphs();
  }

  /**
   * One prompt's share of a batch: {@code n} completions drawn with {@code params}. Completion j of a request
   * draws from a stream seeded by {@code (seed, j)} alone, so a seeded request samples the same tokens alone, in
   * any batch, or in another process ({@code grpo serve}).
   *
   * @param logprobs also report each picked token's log-probability under softmax(logits / temperature), after
   *     the repetition penalty and before top-k / top-p / min-p truncation
   */
  public record Request(long[] prompt, int n, SamplingParams params, long seed, boolean logprobs) {
    public Request {
      if (prompt.length == 0) {
        throw new IllegalArgumentException("every prompt needs at least one token");
      }
      if (n < 1) {
        throw new IllegalArgumentException("n must be >= 1, got " + n);
      }
    }
  }

  /** Ends a completion early (stop strings): asked after every picked token that did not already end it. */
  @FunctionalInterface
  public interface StopCheck {
    boolean stop(int row, long token);
  }

  /** Same as {@link #generate(long[][], SamplingParams, int, long)} with seed 0. */
  public List<Generation> generate(long[][] prompts, SamplingParams p, int n) {
    return generate(prompts, p, n, 0L);
  }

  /**
   * @param prompts token ids per prompt (no padding)
   * @param n completions per prompt; results are ordered prompt-major: (prompt 0: 0..n-1), (prompt 1: ...)
   * @param seed prompt i samples with seed {@link #promptSeed}(seed, i)
   */
  public List<Generation> generate(long[][] prompts, SamplingParams p, int n, long seed) {
    return generate(prompts, p, n, seed, null);
  }

  public Timing lastTiming() {
    return lastTiming;
  }

  /** As above, telling {@code listener} about every token as soon as it is picked. */
  public List<Generation> generate(long[][] prompts, SamplingParams p, int n, long seed, TokenListener listener) {
    List<Request> reqs = new ArrayList<>(prompts.length);
    for (int i = 0; i < prompts.length; i++) {
      if (prompts[i].length == 0) {
        throw new IllegalArgumentException("prompt " + i + " is empty");
      }
      reqs.add(new Request(prompts[i], n, p, promptSeed(seed, i), false));
    }
    return generate(reqs, listener, null);
  }

  /**
   * The seed prompt {@code index} of a batch sampled with {@code seed} uses: consecutive prompts get consecutive
   * seeds, so a request carrying prompts i..k with seed promptSeed(seed, i) (the OpenAI API's prompt list; the
   * server gives prompt t of a list seed + t) samples what this batch samples. Non-negative, so any engine takes it.
   */
  public static long promptSeed(long seed, int index) {
    return (mix(seed, 0) >>> 2) + index;
  }

  /**
   * The general form: requests with their own parameters, completion counts and seeds in one batch. Results are
   * request-major ({@link Generation#promptIndex()} = request index); row = first row of the request + j.
   */
  public List<Generation> generate(List<Request> reqs, TokenListener listener, StopCheck stopCheck) {
    long t0 = System.nanoTime();
    long prefillNanos = 0;
    long pickNanos = 0;
    int b0 = reqs.size();
    if (b0 == 0) {
      return List.of();
    }
    SampledRows b = new SampledRows(reqs, listener, stopCheck);
    if (device != null) {
      lastTiming = deviceGenerate(b);
      return b.results();
    }
    int rows = b.rows;
    int lp = b.promptLength;
    int vocab = model.config().vocabSize();
    TokenPicker[] pickers = new TokenPicker[b0];
    for (int i = 0; i < b0; i++) {
      pickers[i] = new TokenPicker(reqs.get(i).params());
    }
    try (NoGrad noGrad = NoGrad.enter(); NDManager gen = model.manager().newSubManager()) {
      KvCache cache = new KvCache(model.config().numHiddenLayers(), gen);
      float[] logits; // (active rows, V)
      try (NDManager s = gen.newSubManager()) {
        NDArray promptLogits = prefill(b, s, cache); // (b0, V)
        float[] host = promptLogits.toFloatArray();
        logits = new float[rows * vocab];
        for (int r = 0; r < rows; r++) {
          System.arraycopy(host, b.requestOf[r] * vocab, logits, r * vocab, vocab);
        }
      }
      boolean uniform = reqs.stream().allMatch(q -> q.n() == reqs.get(0).n());
      if (rows > b0 && uniform) {
        cache.repeatRows(reqs.get(0).n());
      } else if (rows > b0) {
        long[] expand = new long[rows];
        for (int r = 0; r < rows; r++) {
          expand[r] = b.requestOf[r];
        }
        cache.selectRows(expand); // each prompt's cache serves all its completions
      }
      prefillNanos = System.nanoTime() - t0;
      int[] active = new int[rows]; // batch slot -> completion row
      for (int r = 0; r < rows; r++) {
        active[r] = r;
      }
      int activeCount = rows;
      float[] row = new float[vocab];
      for (int step = 0; step < b.maxNew && activeCount > 0; step++) {
        long pick0 = System.nanoTime();
        long[] next = new long[activeCount];
        int[] keep = new int[activeCount];
        int kept = 0;
        for (int a = 0; a < activeCount; a++) {
          int r = active[a];
          TokenPicker picker = pickers[b.requestOf[r]];
          System.arraycopy(logits, a * vocab, row, 0, vocab);
          long tok = picker.pick(row, b.seen[r], b.seenLen[r], b.rng[r]);
          float logp = b.wantsLogprobs(r) ? picker.lastLogProb(tok) : Float.NaN;
          if (b.accept(r, tok, logp)) {
            keep[kept] = a;
            next[kept] = tok;
            kept++;
          }
        }
        pickNanos += System.nanoTime() - pick0;
        if (kept == 0) {
          break;
        }
        if (kept < activeCount) {
          long[] slots = new long[kept];
          for (int i = 0; i < kept; i++) {
            slots[i] = keep[i];
          }
          cache.selectRows(slots);
        }
        int[] newActive = new int[kept];
        for (int i = 0; i < kept; i++) {
          newActive[i] = active[keep[i]];
        }
        active = newActive;
        activeCount = kept;
        try (NDManager s = gen.newSubManager()) {
          int tk = lp + step + 1;
          int[][] mask = new int[kept][tk];
          long[] pos = new long[kept];
          for (int i = 0; i < kept; i++) {
            int r = active[i];
            System.arraycopy(b.promptMask[r], 0, mask[i], 0, lp);
            Arrays.fill(mask[i], lp, tk, 1);
            pos[i] = b.nextPosition[r]++;
          }
          NDArray hidden = model.hidden(staging.longs(s, 0, Arrays.copyOf(next, kept), new Shape(kept, 1)),
              staging.longs(s, 1, pos, new Shape(kept, 1)), AttentionBias.of(s, mask, 1, staging, 2), cache);
          logits = model.toFloat32(model.logits(hidden)).toFloatArray(); // (kept, 1, V)
        }
      }
    }
    long total = System.nanoTime() - t0;
    lastTiming = new Timing(prefillNanos, total - prefillNanos - pickNanos, pickNanos, b.generatedTokens());
    return b.results();
  }

  /**
   * Prefills the prompts (left-padded to the longest, one row per request) into {@code cache} and returns the last
   * position's logits, (requests, V) float32, in {@code s}.
   */
  private NDArray prefill(SampledRows b, NDManager s, KvCache cache) {
    int b0 = b.requests.size();
    int lp = b.promptLength;
    int[][] mask = new int[b0][];
    long[] ids = new long[b0 * lp];
    long[] pos = new long[b0 * lp];
    for (int i = 0; i < b0; i++) {
      long[] pr = b.requests.get(i).prompt();
      mask[i] = b.promptMask[b.firstRow[i]];
      Arrays.fill(ids, i * lp, (i + 1) * lp, padId);
      System.arraycopy(pr, 0, ids, i * lp + lp - pr.length, pr.length);
      for (int t = 0; t < pr.length; t++) {
        pos[i * lp + lp - pr.length + t] = t;
      }
    }
    NDArray hidden = model.hidden(staging.longs(s, 0, ids, new Shape(b0, lp)),
        staging.longs(s, 1, pos, new Shape(b0, lp)), AttentionBias.of(s, mask, lp, staging, 2), cache);
    return model.toFloat32(model.logits(hidden.get(":, -1, :")));
  }

  /** The GPU path: static shapes, tokens picked on the device, CUDA graphs (see {@link DeviceDecoder}). */
  private Timing deviceGenerate(SampledRows b) {
    try (NoGrad noGrad = NoGrad.enter(); NDManager gen = model.manager().newSubManager()) {
      long p0 = System.nanoTime();
      KvCache cache = new KvCache(model.config().numHiddenLayers(), gen);
      NDArray first = prefill(b, gen, cache);
      long p1 = System.nanoTime();
      device.decode(b, cache, first);
      return new Timing(p1 - p0, System.nanoTime() - p1, 0, b.generatedTokens());
    }
  }

  /** SplitMix64 finaliser: decorrelates the streams of neighbouring completions. */
  static long mix(long seed, long index) {
    long z = seed * 0x9E3779B97F4A7C15L + index + 0x632BE59BD9B4E019L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
