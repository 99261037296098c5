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
import java.util.SplittableRandom;

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

  /** Where the last call's time went, in nanoseconds: prompt prefill, decode forwards, CPU token picking. */
  public record Timing(long prefillNanos, long decodeNanos, long pickNanos, long generatedTokens) {}

  /** Receives each token as it is picked (for streaming output); row = prompt * n + sample. */
  @FunctionalInterface
  public interface TokenListener {
    void onToken(int row, long token);
  }

  public Sampler(CausalLM model, int padId) {
    this.model = model;
    this.padId = padId;
  }

  /** Same as {@link #generate(long[][], SamplingParams, int, long)} with seed 0. */
  public List<Generation> generate(long[][] prompts, SamplingParams p, int n) {
    return generate(prompts, p, n, 0L);
  }

  /**
   * @param prompts token ids per prompt (no padding)
   * @param n completions per prompt; results are ordered prompt-major: (prompt 0: 0..n-1), (prompt 1: ...)
   * @param seed the completion with global index i draws from a stream seeded by (seed, i) alone
   */
  public List<Generation> generate(long[][] prompts, SamplingParams p, int n, long seed) {
    return generate(prompts, p, n, seed, null);
  }

  public Timing lastTiming() {
    return lastTiming;
  }

  /** As above, telling {@code listener} about every token as soon as it is picked. */
  public List<Generation> generate(long[][] prompts, SamplingParams p, int n, long seed, TokenListener listener) {
    long t0 = System.nanoTime();
    long prefillNanos = 0;
    long pickNanos = 0;
    long generated = 0;
    int b0 = prompts.length;
    int rows = b0 * n;
    int vocab = model.config().vocabSize();
    int lp = Arrays.stream(prompts).mapToInt(x -> x.length).max().orElse(0);
    if (lp == 0) {
      throw new IllegalArgumentException("every prompt needs at least one token");
    }
    long[][] seen = new long[rows][]; // prompt + completion tokens per row, for repetition penalty
    int[] seenLen = new int[rows];
    int[][] promptMask = new int[rows][lp];
    long[] nextPosition = new long[rows];
    SplittableRandom[] rng = new SplittableRandom[rows];
    for (int r = 0; r < rows; r++) {
      long[] pr = prompts[r / n];
      if (pr.length == 0) {
        throw new IllegalArgumentException("prompt " + (r / n) + " is empty");
      }
      seen[r] = Arrays.copyOf(pr, pr.length + p.maxNewTokens());
      seenLen[r] = pr.length;
      Arrays.fill(promptMask[r], lp - pr.length, lp, 1);
      nextPosition[r] = pr.length;
      rng[r] = new SplittableRandom(mix(seed, r));
    }
    TokenPicker picker = new TokenPicker(p);
    long[][] out = new long[rows][p.maxNewTokens()];
    int[] outLen = new int[rows];
    String[] reason = new String[rows];

    try (NoGrad noGrad = NoGrad.enter(); NDManager gen = model.manager().newSubManager()) {
      KvCache cache = new KvCache(model.config().numHiddenLayers(), gen);
      float[] logits; // (active rows, V)
      try (NDManager s = gen.newSubManager()) {
        int[][] mask = new int[b0][];
        long[] ids = new long[b0 * lp];
        long[] pos = new long[b0 * lp];
        for (int i = 0; i < b0; i++) {
          mask[i] = promptMask[i * n];
          long[] pr = prompts[i];
          Arrays.fill(ids, i * lp, (i + 1) * lp, padId);
          System.arraycopy(pr, 0, ids, i * lp + lp - pr.length, pr.length);
          for (int t = 0; t < pr.length; t++) {
            pos[i * lp + lp - pr.length + t] = t;
          }
        }
        NDArray hidden = model.hidden(staging.longs(s, 0, ids, new Shape(b0, lp)),
            staging.longs(s, 1, pos, new Shape(b0, lp)), AttentionBias.of(s, mask, lp, staging, 2), cache);
        float[] promptLogits = model.logits(hidden.get(":, -1, :")).toFloatArray(); // (b0, V)
        logits = new float[rows * vocab];
        for (int r = 0; r < rows; r++) {
          System.arraycopy(promptLogits, (r / n) * vocab, logits, r * vocab, vocab);
        }
      }
      if (n > 1) {
        cache.repeatRows(n);
      }
      prefillNanos = System.nanoTime() - t0;
      int[] active = new int[rows]; // batch slot -> completion row
      for (int r = 0; r < rows; r++) {
        active[r] = r;
      }
      int activeCount = rows;
      float[] row = new float[vocab];
      for (int step = 0; step < p.maxNewTokens() && activeCount > 0; step++) {
        long pick0 = System.nanoTime();
        long[] next = new long[activeCount];
        int[] keep = new int[activeCount];
        int kept = 0;
        for (int a = 0; a < activeCount; a++) {
          int r = active[a];
          System.arraycopy(logits, a * vocab, row, 0, vocab);
          long tok = picker.pick(row, seen[r], seenLen[r], rng[r]);
          out[r][outLen[r]++] = tok;
          seen[r][seenLen[r]++] = tok;
          generated++;
          if (listener != null) {
            listener.onToken(r, tok);
          }
          if (p.isStop(tok)) {
            reason[r] = "stop";
          } else if (outLen[r] == p.maxNewTokens()) {
            reason[r] = "length";
          } else {
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
            System.arraycopy(promptMask[r], 0, mask[i], 0, lp);
            Arrays.fill(mask[i], lp, tk, 1);
            pos[i] = nextPosition[r]++;
          }
          NDArray hidden = model.hidden(staging.longs(s, 0, Arrays.copyOf(next, kept), new Shape(kept, 1)),
              staging.longs(s, 1, pos, new Shape(kept, 1)), AttentionBias.of(s, mask, 1, staging, 2), cache);
          logits = model.logits(hidden).toFloatArray(); // (kept, 1, V)
        }
      }
    }
    long total = System.nanoTime() - t0;
    lastTiming = new Timing(prefillNanos, total - prefillNanos - pickNanos, pickNanos, generated);
    List<Generation> result = new ArrayList<>(rows);
    for (int r = 0; r < rows; r++) {
      result.add(new Generation(r / n, Arrays.copyOf(out[r], outLen[r]), reason[r] == null ? "length" : reason[r]));
    }
    return result;
  }

  /** SplitMix64 finaliser: decorrelates the streams of neighbouring completions. */
  static long mix(long seed, long index) {
    long z = seed * 0x9E3779B97F4A7C15L + index + 0x632BE59BD9B4E019L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
