package io.grpo4j.trainer.generation;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks one token from one row of logits on the CPU, in the order transformers applies its logits processors.
 * A row's random stream depends only on the seed and the completion's index, never on batch composition, so a
 * seeded completion is the same whether it was sampled alone, in a batch, or by another process.
 */
final class TokenPicker {
  private final SamplingParams p;
  private int[] order = new int[0];
  private double[] prob = new double[0]; // the last pick's probabilities, then their cumulative sums (reused)
  private float[] lastLogits; // the last pick's processed logits (penalised, divided by temperature)
  private double lastLogNorm = Double.NaN; // their log-sum-exp, when the pick computed it

  TokenPicker(SamplingParams p) {
    this.p = p;
  }

  /** @param logits this row's logits, modified in place; @param seen tokens of prompt + completion so far */
  long pick(float[] logits, long[] seen, int seenLength, SplittableRandom rng) {
    if (p.repetitionPenalty() != 1.0) {
      float pen = (float) p.repetitionPenalty();
      boolean[] done = new boolean[logits.length];
      for (int i = 0; i < seenLength; i++) {
        int t = (int) seen[i];
        if (t >= 0 && t < logits.length && !done[t]) {
          done[t] = true;
          logits[t] = logits[t] < 0 ? logits[t] * pen : logits[t] / pen;
        }
      }
    }
    lastLogits = logits;
    lastLogNorm = Double.NaN;
    if (p.greedy()) {
      return argMax(logits);
    }
    int v = logits.length;
    float invT = (float) (1.0 / p.temperature());
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < v; i++) {
      logits[i] *= invT;
      max = Math.max(max, logits[i]);
    }
    // probabilities (unnormalised exp, then normalised) over the tokens still allowed
    if (prob.length != v) {
      prob = new double[v];
    }
    double[] prob = this.prob;
    double sum = 0;
    for (int i = 0; i < v; i++) {
      prob[i] = Math.exp(logits[i] - max);
      sum += prob[i];
    }
    lastLogNorm = max + Math.log(sum);
    for (int i = 0; i < v; i++) {
      prob[i] /= sum;
    }
    boolean filter = p.topK() > 0 && p.topK() < v || p.topP() < 1.0;
    if (filter) {
      int[] idx = sortedByProbability(prob);
      int keep = v;
      if (p.topK() > 0 && p.topK() < v) {
        // ties with the k-th value stay, as in transformers' TopKLogitsWarper
        double kth = prob[idx[p.topK() - 1]];
        keep = p.topK();
        while (keep < v && prob[idx[keep]] == kth) {
          keep++;
        }
      }
      if (p.topP() < 1.0) {
        double kept = 0;
        for (int i = 0; i < keep; i++) {
          kept += prob[idx[i]];
        }
        // renormalise over the top-k survivors, then keep the smallest prefix reaching top_p
        double c = 0;
        int n = 0;
        while (n < keep) {
          c += prob[idx[n]] / kept;
          n++;
          if (c >= p.topP()) {
            break;
          }
        }
        keep = Math.max(1, n);
      }
      for (int i = keep; i < v; i++) {
        prob[idx[i]] = 0;
      }
    }
    if (p.minP() > 0) {
      double top = 0;
      for (double x : prob) {
        top = Math.max(top, x);
      }
      double floor = p.minP() * top;
      for (int i = 0; i < v; i++) {
        if (prob[i] < floor) {
          prob[i] = 0;
        }
      }
    }
    // inverse CDF: the first token whose cumulative mass exceeds u * total. The masses are summed once, in token
    // order (the total is the last of them), and searched by bisection instead of a second pass
    double c = 0;
    int last = 0;
    for (int i = 0; i < v; i++) {
      if (prob[i] > 0) {
        c += prob[i];
        last = i;
      }
      prob[i] = c;
    }
    return firstAbove(prob, rng.nextDouble() * c, last);
  }

  /**
   * The first index whose cumulative mass exceeds {@code u}, or {@code last} (the last token with mass) when
   * rounding put u at the total. A token without mass never is the first: its cumulative mass equals its
   * predecessor's.
   */
  private static int firstAbove(double[] cumulative, double u, int last) {
    int lo = 0;
    int hi = cumulative.length;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (cumulative[mid] > u) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo < cumulative.length ? lo : last;
  }

  /**
   * log-probability of {@code token} under the last pick's distribution before top-k / top-p / min-p truncation:
   * softmax(logits / temperature), after the repetition penalty. Free when sampling (the pick computed the
   * normaliser); one pass over the vocabulary when greedy.
   */
  float lastLogProb(long token) {
    if (Double.isNaN(lastLogNorm)) {
      double max = Double.NEGATIVE_INFINITY;
      for (float x : lastLogits) {
        max = Math.max(max, x);
      }
      double sum = 0;
      for (float x : lastLogits) {
        sum += Math.exp(x - max);
      }
      lastLogNorm = max + Math.log(sum);
    }
    return (float) (lastLogits[(int) token] - lastLogNorm);
  }

  /**
   * The {@code n} most likely tokens under the same distribution as {@link #lastLogProb}, best first, with their
   * log-probabilities (ties by lower id): what OpenAI's top_logprobs report.
   */
  java.util.Map<Long, Float> lastTopLogProbs(int n) {
    lastLogProb(0); // makes sure the normaliser is known
    java.util.Map<Long, Float> out = new java.util.LinkedHashMap<>();
    for (int i : topIndices(lastLogits, 0, lastLogits.length, n)) {
      out.put((long) i, (float) (lastLogits[i] - lastLogNorm));
    }
    return out;
  }

  /**
   * The indices (relative to {@code from}) of the {@code k} largest of {@code x[from, from + len)}, largest first,
   * ties by lower index. Insertion into a small sorted array: k is at most 20, and most values fail the first test.
   */
  static int[] topIndices(float[] x, int from, int len, int k) {
    k = Math.min(k, len);
    int[] best = new int[k];
    int found = 0;
    for (int i = 0; i < len; i++) {
      float xi = x[from + i];
      int at = found;
      while (at > 0 && x[from + best[at - 1]] < xi) {
        at--;
      }
      if (at < k) {
        int end = Math.min(found, k - 1);
        System.arraycopy(best, at, best, at + 1, end - at);
        best[at] = i;
        found = Math.min(found + 1, k);
      }
    }
    return java.util.Arrays.copyOf(best, found);
  }

  private int[] sortedByProbability(double[] prob) {
    int v = prob.length;
    if (order.length != v) {
      order = new int[v];
    }
    Integer[] boxed = new Integer[v];
    for (int i = 0; i < v; i++) {
      boxed[i] = i;
    }
    Arrays.sort(boxed, (a, b) -> Double.compare(prob[b], prob[a]));
    for (int i = 0; i < v; i++) {
      order[i] = boxed[i];
    }
    return order;
  }

  static int argMax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }
}
