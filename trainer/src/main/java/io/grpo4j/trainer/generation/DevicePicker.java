package io.grpo4j.trainer.generation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import java.util.List;

/**
 * {@link TokenPicker}'s rules for every row at once, as tensor ops on the model's device: repetition penalty,
 * temperature, top-k (ties kept), top-p over the top-k survivors, min-p, then a draw from the rest by inverse CDF with
 * one uniform number per row from the row's own seeded stream (so a seeded completion does not depend on its batch).
 * Greedy rows take the argmax. Only one row of numbers per step leaves the device (token and log-prob), never the
 * logits. No op here reads a value back or uploads from Java, so a decoding step can be captured as a CUDA graph.
 *
 * <p>Per-row parameters live in tensors of fixed shape, loaded once per batch ({@link #load}); which filters exist
 * at all ({@link Filters}) is fixed per instance, so rows without a filter cost nothing when no row has it.
 */
final class DevicePicker implements AutoCloseable {
  /** Which filters any row of a batch uses: decides the ops (and so a captured graph's shape). */
  record Filters(boolean penalty, boolean sorted, boolean minP) {
    static Filters of(List<SamplingParams> rows, int vocab) {
      boolean penalty = false;
      boolean sorted = false;
      boolean minP = false;
      for (SamplingParams p : rows) {
        if (p.greedy()) {
          penalty |= p.repetitionPenalty() != 1.0;
          continue;
        }
        penalty |= p.repetitionPenalty() != 1.0;
        sorted |= p.topK() > 0 && p.topK() < vocab || p.topP() < 1.0;
        minP |= p.minP() > 0;
      }
      return new Filters(penalty, sorted, minP);
    }
  }

  private final Filters filters;
  private final int rows;
  private final int vocab;
  private final NDManager store;
  private final NDArray invTemperature; // (R, 1) float32; 1 for greedy rows
  private final NDArray penalty; // (R, 1) float32
  private final NDArray topKIndex; // (R, 1) int64: rank of the k-th token (V - 1 = no top-k)
  private final NDArray topP; // (R, 1) float32
  private final NDArray noTopP; // (R, 1) bool: the row keeps every top-k survivor
  private final NDArray minP; // (R, 1) float32 (0 = none)
  private final NDArray greedy; // (R) bool
  private final NDArray seen; // (R, V) bool: tokens of prompt + completion so far (repetition penalty)
  private final NDArray zero; // () float32
  private final NDArray trueColumn; // (R, 1) bool

  DevicePicker(NDManager parent, int rows, int vocab, Filters filters) {
    this.filters = filters;
    this.rows = rows;
    this.vocab = vocab;
    this.store = parent.newSubManager();
    Shape col = new Shape(rows, 1);
    invTemperature = store.ones(col);
    penalty = store.ones(col);
    topKIndex = store.full(col, vocab - 1, DataType.INT64);
    topP = store.ones(col);
    noTopP = store.ones(col, DataType.BOOLEAN);
    minP = store.zeros(col);
    greedy = store.zeros(new Shape(rows), DataType.BOOLEAN);
    seen = filters.penalty() ? store.zeros(new Shape(rows, vocab), DataType.BOOLEAN) : null;
    zero = store.create(0f);
    trueColumn = store.ones(col, DataType.BOOLEAN);
  }

  Filters filters() {
    return filters;
  }

  /**
   * Loads one batch's per-row parameters and prompt tokens (for the repetition penalty), in place.
   *
   * @param prompts per row, its prompt's token ids
   */
  void load(SamplingParams[] params, long[][] prompts) {
    float[] invT = new float[rows];
    float[] pen = new float[rows];
    long[] kIdx = new long[rows];
    float[] tp = new float[rows];
    boolean[] noTp = new boolean[rows];
    float[] mp = new float[rows];
    boolean[] gr = new boolean[rows];
    for (int r = 0; r < rows; r++) {
      SamplingParams p = params[Math.min(r, params.length - 1)];
      gr[r] = p.greedy();
      invT[r] = p.greedy() ? 1f : (float) (1.0 / p.temperature());
      pen[r] = (float) p.repetitionPenalty();
      boolean topK = !p.greedy() && p.topK() > 0 && p.topK() < vocab;
      kIdx[r] = topK ? p.topK() - 1 : vocab - 1;
      tp[r] = (float) p.topP();
      noTp[r] = p.greedy() || p.topP() >= 1.0;
      mp[r] = p.greedy() ? 0f : (float) p.minP();
    }
    try (NDManager tmp = store.newSubManager()) {
      Shape col = new Shape(rows, 1);
      set(invTemperature, tmp.create(invT, col));
      set(penalty, tmp.create(pen, col));
      set(topKIndex, tmp.create(kIdx, col));
      set(topP, tmp.create(tp, col));
      set(noTopP, tmp.create(noTp, col));
      set(minP, tmp.create(mp, col));
      set(greedy, tmp.create(gr, new Shape(rows)));
      if (seen != null) {
        // the prompt's tokens; pads are replaced by the row's first token so they mark nothing new
        int width = 1;
        for (long[] p : prompts) {
          width = Math.max(width, p.length);
        }
        long[] ids = new long[rows * width];
        for (int r = 0; r < rows; r++) {
          long[] p = prompts[Math.min(r, prompts.length - 1)];
          Arrays.fill(ids, r * width, (r + 1) * width, p[0]);
          System.arraycopy(p, 0, ids, r * width, p.length);
        }
        NDArray idx = tmp.create(ids, new Shape(rows, width));
        NDArray none = tmp.zeros(new Shape(rows, vocab), DataType.BOOLEAN);
        set(seen, none.scatter(idx, tmp.ones(new Shape(rows, width), DataType.BOOLEAN), 1));
      }
    }
  }

  /** A row's draw for {@link #pick}: its stream's next number as a float32 below 1 (the device compares it against
   * cumulative float32 mass). */
  static float uniform(java.util.SplittableRandom rng) {
    return (float) Math.min(rng.nextDouble(), 0.99999994);
  }

  private static void set(NDArray dst, NDArray value) {
    dst.set(new NDIndex("..."), value);
  }

  /**
   * Picks one token per row.
   *
   * @param logits (R, V) float32
   * @param uniforms (R) float32 in [0, 1): each row's draw from its own stream
   * @param step where intermediates go (closed by the caller)
   * @return (2, R) float64: the tokens, and their log-probs under softmax(penalised logits / temperature) before
   *     any truncation (what {@link TokenPicker#lastLogProb} reports)
   */
  NDArray pick(NDArray logits, NDArray uniforms, NDManager step) {
    Ops o = new Ops(step);
    NDArray l = logits;
    if (filters.penalty()) {
      NDArray down = o.t(NDArrays.where(o.t(l.lt(zero)), o.t(l.mul(penalty)), o.t(l.div(penalty))));
      l = o.t(NDArrays.where(seen, down, l));
    }
    NDArray greedyToken = o.t(l.argMax(-1)); // (R)
    NDArray lt = o.t(l.mul(invTemperature)); // (R, V)
    NDArray max = o.t(lt.max(new int[] {-1}, true)); // (R, 1)
    NDArray p = o.t(o.t(lt.sub(max)).exp()); // (R, V), unnormalised: the top token has 1
    NDArray logZ = o.t(o.t(o.t(p.sum(new int[] {-1}, true)).log()).add(max)); // (R, 1)
    NDArray keep = null; // (R, V) float 0/1
    if (filters.sorted()) {
      NDArray order = o.t(p.argSort(-1, false)); // (R, V) descending
      NDArray sorted = o.t(p.gather(order, -1));
      NDArray kth = o.t(sorted.gather(topKIndex, -1)); // (R, 1)
      NDArray inK = o.t(sorted.gte(kth)); // ties with the k-th value stay
      NDArray survivors = o.t(sorted.mul(inK));
      NDArray cum = o.t(survivors.cumSum(-1));
      NDArray total = o.t(cum.get(new NDIndex(":, -1:"))); // (R, 1)
      NDArray before = o.t(cum.sub(survivors)); // mass of the higher-ranked survivors
      // the smallest prefix reaching top_p of the survivors' mass: a token stays if the mass before it is short
      NDArray inP = o.t(o.t(before.lt(o.t(total.mul(topP)))).logicalOr(noTopP));
      NDArray keepSorted = o.t(o.t(inK.logicalAnd(inP)).toType(DataType.FLOAT32, false));
      keep = o.t(o.t(p.zerosLike()).scatter(order, keepSorted, -1));
    }
    if (filters.minP()) {
      NDArray inMin = o.t(o.t(p.gte(minP)).toType(DataType.FLOAT32, false)); // p / max(p) >= min_p
      keep = keep == null ? inMin : o.t(keep.mul(inMin));
    }
    NDArray q = keep == null ? p : o.t(p.mul(keep));
    NDArray cdf = o.t(q.cumSum(-1)); // (R, V)
    NDArray target = o.t(o.t(cdf.get(new NDIndex(":, -1"))).mul(uniforms)); // (R)
    // the first token whose cumulative mass exceeds the target = the number of tokens at or below it
    NDArray drawn = o.t(o.t(cdf.lte(o.t(target.expandDims(-1)))).sum(new int[] {-1}));
    NDArray token = o.t(NDArrays.where(greedy, greedyToken, o.t(drawn.toType(DataType.INT64, false))));
    NDArray column = o.t(token.expandDims(-1)); // (R, 1)
    NDArray logp = o.t(o.t(o.t(lt.gather(column, -1)).sub(logZ)).squeeze(-1)); // (R)
    if (seen != null) {
      set(seen, o.t(seen.scatter(column, trueColumn, 1)));
    }
    return o.t(NDArrays.stack(new NDList(o.t(token.toType(DataType.FLOAT64, false)),
        o.t(logp.toType(DataType.FLOAT64, false)))));
  }

  /** Puts every intermediate in the step's manager, whichever operand's manager made it. */
  private record Ops(NDManager step) {
    NDArray t(NDArray a) {
      a.attach(step);
      return a;
    }
  }

  @Override
  public void close() {
    store.close();
  }
}
