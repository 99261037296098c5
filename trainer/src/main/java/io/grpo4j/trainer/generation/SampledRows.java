package io.grpo4j.trainer.generation;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One {@link Sampler#generate} call's completions, row by row (row = first row of its request + sample): the left
 * padding of the prompts, each row's seeded random stream and next position, the tokens picked so far and why a row
 * ended. The host and the device decoding paths both fill it through {@link #accept}, so they stop a row alike.
 */
final class SampledRows {
  final List<Sampler.Request> requests;
  final int rows;
  final int promptLength; // the longest prompt: every prompt is left-padded to it
  final int maxNew; // the most new tokens any request asks for
  final int[] firstRow; // per request
  final int[] requestOf; // per row
  final int[][] promptMask; // per row: 1 where the padded prompt has a token
  final long[] nextPosition;
  final SplittableRandom[] rng;
  final long[][] seen; // prompt + completion tokens per row, for the repetition penalty
  final int[] seenLen;
  private final long[][] out;
  private final float[][] logps; // null rows: the request did not ask for log-probs
  private final int[] outLen;
  private final String[] reason;
  private final Sampler.TokenListener listener;
  private final Sampler.StopCheck stopCheck;

  SampledRows(List<Sampler.Request> requests, Sampler.TokenListener listener, Sampler.StopCheck stopCheck) {
    this.requests = requests;
    this.listener = listener;
    this.stopCheck = stopCheck;
    int b0 = requests.size();
    firstRow = new int[b0];
    int n = 0;
    int most = 0;
    int lp = 0;
    for (int i = 0; i < b0; i++) {
      firstRow[i] = n;
      n += requests.get(i).n();
      most = Math.max(most, requests.get(i).params().maxNewTokens());
      lp = Math.max(lp, requests.get(i).prompt().length);
    }
    rows = n;
    maxNew = most;
    promptLength = lp;
    requestOf = new int[rows];
    promptMask = new int[rows][];
    nextPosition = new long[rows];
    rng = new SplittableRandom[rows];
    seen = new long[rows][];
    seenLen = new int[rows];
    out = new long[rows][];
    logps = new float[rows][];
    outLen = new int[rows];
    reason = new String[rows];
    for (int i = 0; i < b0; i++) {
      Sampler.Request q = requests.get(i);
      int[] mask = new int[lp];
      Arrays.fill(mask, lp - q.prompt().length, lp, 1);
      for (int j = 0; j < q.n(); j++) {
        int r = firstRow[i] + j;
        requestOf[r] = i;
        seen[r] = Arrays.copyOf(q.prompt(), q.prompt().length + q.params().maxNewTokens());
        seenLen[r] = q.prompt().length;
        promptMask[r] = mask;
        nextPosition[r] = q.prompt().length;
        rng[r] = new SplittableRandom(Sampler.mix(q.seed(), j));
        out[r] = new long[q.params().maxNewTokens()];
        logps[r] = q.logprobs() ? new float[q.params().maxNewTokens()] : null;
      }
    }
  }

  SamplingParams params(int row) {
    return requests.get(requestOf[row]).params();
  }

  /** Whether the row's request asked for log-probs. */
  boolean wantsLogprobs(int row) {
    return logps[row] != null;
  }

  /**
   * Records the row's next token (and its log-prob when asked for), tells the listener, and says whether the row
   * goes on: false once it picked a stop token, a stop string ended it, or it reached its max new tokens.
   */
  boolean accept(int row, long token, float logprob) {
    if (logps[row] != null) {
      logps[row][outLen[row]] = logprob;
    }
    out[row][outLen[row]++] = token;
    seen[row][seenLen[row]++] = token;
    if (listener != null) {
      listener.onToken(row, token, logps[row] != null ? logprob : Float.NaN);
    }
    SamplingParams p = params(row);
    if (p.isStop(token) || stopCheck != null && stopCheck.stop(row, token)) {
      reason[row] = "stop";
      return false;
    }
    if (outLen[row] == p.maxNewTokens()) {
      reason[row] = "length";
      return false;
    }
    return true;
  }

  long generatedTokens() {
    return Arrays.stream(outLen).sum();
  }

  List<Generation> results() {
    List<Generation> result = new ArrayList<>(rows);
    for (int r = 0; r < rows; r++) {
      result.add(new Generation(requestOf[r], Arrays.copyOf(out[r], outLen[r]), reason[r] == null ? "length"
          : reason[r], logps[r] == null ? null : Arrays.copyOf(logps[r], outLen[r])));
    }
    return result;
  }
}
