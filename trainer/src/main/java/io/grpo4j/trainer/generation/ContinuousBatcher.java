package io.grpo4j.trainer.generation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.device.CudaGraph;
import io.grpo4j.trainer.model.AttentionBias;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HostStaging;
import io.grpo4j.trainer.model.KvCache;
import io.grpo4j.trainer.model.NoGrad;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Continuous batching, as vLLM and SGLang do it: sequences join the running batch at the next decoding step and
 * leave it the step they finish, so a request never waits for a whole batch to drain. One owner thread calls
 * {@link #admit} and {@link #step}. New prompts are prefilled together (each once, its n completions sharing the
 * cache), then their keys and values are spliced into the running cache: whichever side is shorter is padded on the
 * left with masked positions, and positions no row uses any more are trimmed away. Each completion draws from its
 * own seeded stream ({@link Sampler#mix}), so a seeded request samples the same tokens whatever it shares a batch
 * with. On a CPU tokens are picked on the host ({@link TokenPicker}), which also gives top-N log-probs; on a GPU
 * they are picked on the device ({@link DevicePicker}, as {@link Sampler}'s GPU path does) and only the picked tokens
 * come back: copying a 151,936-token vocabulary's logits a row a step to the host and picking there made a GPU
 * server slower than a CPU one. Sequences that ask for top log-probs are picked on the host from their own rows.
 */
public final class ContinuousBatcher implements AutoCloseable {
  /** Where a sequence's tokens go, as they are picked. */
  public interface Sink {
    /** The prompt's own log-probs (echo), before any token; only for sequences that asked for them. */
    default void prompt(PromptLogprobs scores) {}

    /** @param top the top alternatives (token to log-prob, best first) when asked for, else null */
    void token(long token, float logprob, Map<Long, Float> top);

    /** The sequence ended: "stop" or "length". */
    void done(String reason);
  }

  /** Decides after each token whether a stop string has appeared. */
  public interface StopCheck {
    boolean stop(long token);
  }

  /**
   * One completion to sample.
   *
   * @param stream which of the request's completions (its random stream is mix(seed, stream))
   * @param topLogprobs alternatives to report per generated token (0 = none)
   * @param promptLogprobs -1: no prompt log-probs; else they are computed with this many alternatives per token
   * @param generate false: score the prompt only (echo with max_tokens 0); the sequence ends at admission
   */
  public record Seq(long[] prompt, SamplingParams params, long seed, int stream, int topLogprobs,
      int promptLogprobs, boolean generate, Sink sink, StopCheck stopCheck) {}

  /** A sequence in the running batch. */
  private static final class Row {
    final Seq seq;
    final TokenPicker picker; // null: picked on the device
    final SplittableRandom rng;
    final long[] seen; // prompt + completion, for the repetition penalty
    int seenLen;
    int generated;
    long position; // of the next token
    long next; // the token to feed at the next step
    int[] keyMask; // 1 where the cache holds this row's tokens
    int slot = -1; // with slot decoding: its row there

    Row(Seq seq, boolean onDevice) {
      this.seq = seq;
      this.picker = onDevice && seq.topLogprobs() == 0 ? null : new TokenPicker(seq.params());
      this.rng = new SplittableRandom(Sampler.mix(seq.seed(), seq.stream()));
      this.seen = Arrays.copyOf(seq.prompt(), seq.prompt().length + seq.params().maxNewTokens());
      this.seenLen = seq.prompt().length;
      this.position = seq.prompt().length;
    }
  }

  private final CausalLM model;
  private final int padId;
  private final boolean pickOnDevice;
  private DevicePicker runningPicker; // the running rows' device picker, in their order; null after they changed
  private int runningPickerSteps; // steps it has served
  private SlotPickGraph pickGraph; // its pick, captured under slot decoding; null until it has served a few steps
  private boolean pickGraphFailed;
  private final NDManager store;
  private final HostStaging staging = new HostStaging(3);
  private KvCache cache; // rows = active, in order; null with slot decoding
  private final SlotDecoding slots; // null: the growing cache above
  private final List<Row> active = new ArrayList<>();
  private volatile long steps;
  private volatile long rowSteps;

  /**
   * Picks tokens on the device for a GPU model, on the host for a CPU one; decodes in slots replayed as a CUDA graph
   * where graphs can be captured ({@link SlotDecoding}).
   */
  public ContinuousBatcher(CausalLM model, int padId) {
    this(model, padId, DeviceDecoder.defaultFor(model.device()),
        CudaGraph.supported(model.device()) ? SlotDecoding.FIRST_CAPACITY : 0);
  }

  /**
   * @param pickOnDevice true: tokens are picked on the model's device ({@link DevicePicker}: the same tokens as
   *     {@link Sampler}'s device path); false: on the host ({@link TokenPicker}: as its host path)
   */
  public ContinuousBatcher(CausalLM model, int padId, boolean pickOnDevice) {
    this(model, padId, pickOnDevice, 0);
  }

  /**
   * @param slotCapacity above 0: running sequences decode in the fixed slots of {@link SlotDecoding} (captured as a
   *     CUDA graph when {@link CudaGraph#supported}), at first this many positions; 0: in one cache that grows and
   *     shrinks with the batch
   */
  ContinuousBatcher(CausalLM model, int padId, boolean pickOnDevice, int slotCapacity) {
    this.model = model;
    this.padId = padId;
    this.pickOnDevice = pickOnDevice;
    this.store = model.manager().newSubManager();
    this.slots = slotCapacity > 0
        ? new SlotDecoding(model, store, CudaGraph.supported(model.device()), slotCapacity) : null;
  }

  /** With slot decoding: its slots, positions and column moves so far (for tests); null without. */
  SlotDecoding.Extent slotExtent() {
    return slots == null ? null : slots.extent();
  }

  /** Whether decoding steps replay a captured CUDA graph (slot decoding on CUDA, after the first step). */
  boolean replaysGraph() {
    return slots != null && slots.capturedGraph();
  }

  public int activeRows() {
    return active.size();
  }

  /** Mean rows per decoding step so far (batch occupancy). */
  public double meanRows() {
    return steps == 0 ? 0 : rowSteps / (double) steps;
  }

  public long steps() {
    return steps;
  }

  /** Sequences decoded, summed over steps. */
  public long rowSteps() {
    return rowSteps;
  }

  /**
   * Prefills new sequences and adds them to the running batch; each gets its first token now. Sequences of one
   * prompt (equal {@code prompt} arrays by identity) share one prefill.
   */
  public void admit(List<Seq> seqs) {
    if (seqs.isEmpty()) {
      return;
    }
    // one prefill row per distinct prompt
    Map<long[], Integer> promptRow = new LinkedHashMap<>();
    for (Seq s : seqs) {
      promptRow.putIfAbsent(s.prompt(), promptRow.size());
    }
    List<long[]> prompts = new ArrayList<>(promptRow.keySet());
    int b0 = prompts.size();
    int lp = prompts.stream().mapToInt(p -> p.length).max().orElse(0);
    int[][] mask = new int[b0][lp];
    long[] ids = new long[b0 * lp];
    long[] pos = new long[b0 * lp];
    for (int i = 0; i < b0; i++) {
      long[] pr = prompts.get(i);
      Arrays.fill(ids, i * lp, (i + 1) * lp, padId);
      System.arraycopy(pr, 0, ids, i * lp + lp - pr.length, pr.length);
      for (int t = 0; t < pr.length; t++) {
        pos[i * lp + lp - pr.length + t] = t;
        mask[i][lp - pr.length + t] = 1;
      }
    }
    List<Row> rows = new ArrayList<>();
    List<Row> finished = new ArrayList<>();
    try (NoGrad g = NoGrad.enter(); NDManager s = store.newSubManager()) {
      KvCache fresh = new KvCache(model.config().numHiddenLayers(), store);
      NDArray firstLogits;
      try {
        NDArray hidden = model.hidden(staging.longs(s, 0, ids, new Shape(b0, lp)),
            staging.longs(s, 1, pos, new Shape(b0, lp)), AttentionBias.of(s, mask, lp, staging, 2), fresh);
        firstLogits = model.toFloat32(model.logits(hidden.get(":, -1, :"))); // (b0, V)
        Map<long[], PromptLogprobs> scores = new java.util.IdentityHashMap<>();
        for (Seq q : seqs) {
          if (q.promptLogprobs() >= 0 && !scores.containsKey(q.prompt())) {
            int i = promptRow.get(q.prompt());
            scores.put(q.prompt(), promptScores(hidden.get(i), q.prompt(), lp, q.promptLogprobs()));
          }
        }
        for (Seq q : seqs) {
          if (q.promptLogprobs() >= 0) {
            q.sink().prompt(scores.get(q.prompt()));
          }
        }
        long[] source = new long[seqs.size()];
        for (int i = 0; i < seqs.size(); i++) {
          source[i] = promptRow.get(seqs.get(i).prompt());
          Row r = new Row(seqs.get(i), pickOnDevice);
          r.keyMask = mask[(int) source[i]].clone();
          rows.add(r);
        }
        fresh.selectRows(source); // each prompt's keys/values for each of its completions
      } catch (RuntimeException | Error e) {
        fresh.close(); // the running batch never saw it
        throw e;
      }
      if (slots != null) {
        int[][] masks = new int[rows.size()][];
        long[] identity = new long[rows.size()];
        for (int i = 0; i < masks.length; i++) {
          masks[i] = rows.get(i).keyMask;
          identity[i] = i;
        }
        try {
          int[] slotOf = slots.join(fresh, lp, identity, masks);
          for (int i = 0; i < slotOf.length; i++) {
            rows.get(i).slot = slotOf[i];
          }
        } finally {
          fresh.close();
        }
        active.addAll(rows);
        dropRunningPicker();
      } else {
        splice(fresh, lp, rows);
      }
      // the first token of every new row, from its prompt's last logits; scoring-only rows end here
      List<Row> generating = new ArrayList<>();
      List<Long> logitRow = new ArrayList<>();
      for (Row r : rows) {
        if (r.seq.generate()) {
          generating.add(r);
          logitRow.add((long) promptRow.get(r.seq.prompt()));
        } else {
          r.seq.sink().done("length");
          finished.add(r);
        }
      }
      if (!generating.isEmpty()) {
        NDArray perRow = firstLogits.get(s.create(logitRow.stream().mapToLong(Long::longValue).toArray()));
        try {
          finished.addAll(pickAll(generating, perRow, false, s));
        } catch (RuntimeException | Error e) {
          remove(rows); // the caller fails their requests: they must not decode on
          throw e;
        }
      }
    }
    remove(finished);
  }

  /**
   * Log-probs of each prompt token given those before it, from the prompt's prefill hidden states (lp, H) where
   * the prompt fills the last {@code prompt.length} positions. Log-softmax runs on the device; the top-N search on
   * the host, one position at a time.
   */
  private PromptLogprobs promptScores(NDArray hidden, long[] prompt, int lp, int topN) {
    int len = prompt.length;
    float[] lps = new float[len];
    lps[0] = Float.NaN;
    List<Map<Long, Float>> top = topN > 0 ? new ArrayList<>(len) : null;
    if (top != null) {
      top.add(null);
    }
    if (len > 1) {
      int vocab = model.config().vocabSize();
      // positions lp-len .. lp-2 predict prompt tokens 1 .. len-1
      NDArray h = hidden.get(new ai.djl.ndarray.index.NDIndex("{}:{}", lp - len, lp - 1));
      float[] logp = model.toFloat32(model.logits(h.expandDims(0))).squeeze(0).logSoftmax(-1).toFloatArray();
      for (int t = 1; t < len; t++) {
        int off = (t - 1) * vocab;
        lps[t] = logp[off + (int) prompt[t]];
        if (top != null) {
          Map<Long, Float> m = new LinkedHashMap<>();
          for (int i : TokenPicker.topIndices(logp, off, vocab, topN)) {
            m.put((long) i, logp[off + i]);
          }
          top.add(m);
        }
      }
    }
    return new PromptLogprobs(lps, top);
  }

  /** Adds rows whose prefill cache (length {@code lp}) is {@code fresh} to the running batch. */
  private void splice(KvCache fresh, int lp, List<Row> rows) {
    if (active.isEmpty()) {
      if (cache != null) {
        cache.close();
      }
      cache = fresh;
    } else {
      int length = cache.length();
      int target = Math.max(length, lp);
      for (Row r : active) {
        r.keyMask = leftPad(r.keyMask, target - length);
      }
      for (Row r : rows) {
        r.keyMask = leftPad(r.keyMask, target - lp);
      }
      cache.appendRows(fresh); // both sides aligned on the right, the shorter padded on the left
      fresh.close();
    }
    active.addAll(rows);
    dropRunningPicker();
  }

  private static int[] leftPad(int[] mask, int by) {
    if (by == 0) {
      return mask;
    }
    int[] out = new int[mask.length + by];
    System.arraycopy(mask, 0, out, by, mask.length);
    return out;
  }

  /** One decoding step for every running row; false when there was nothing to do. */
  public boolean step() {
    if (active.isEmpty()) {
      return false;
    }
    if (slots != null) {
      return slotStep();
    }
    int b = active.size();
    int tk = cache.length() + 1; // the cache's positions and this step's
    long[] ids = new long[b];
    long[] pos = new long[b];
    int[][] mask = new int[b][];
    for (int i = 0; i < b; i++) {
      Row r = active.get(i);
      ids[i] = r.next;
      pos[i] = r.position++;
      r.keyMask = Arrays.copyOf(r.keyMask, tk);
      r.keyMask[tk - 1] = 1;
      mask[i] = r.keyMask;
    }
    List<Row> finished;
    try (NoGrad g = NoGrad.enter(); NDManager s = store.newSubManager()) {
      NDArray hidden = model.hidden(staging.longs(s, 0, ids, new Shape(b, 1)), staging.longs(s, 1, pos, new Shape(b, 1)),
          AttentionBias.of(s, mask, 1, staging, 2), cache);
      finished = pickAll(active, model.toFloat32(model.logits(hidden)), true, s); // (B, 1, V)
    }
    steps++;
    rowSteps += b;
    remove(finished);
    return true;
  }

  /** {@link #step} with slot decoding: every slot decodes, the running rows' logits are picked from. */
  private boolean slotStep() {
    int b = active.size();
    int rows = slots.rows();
    long[] ids = new long[rows];
    long[] pos = new long[rows];
    Arrays.fill(ids, padId);
    long[] slotOf = new long[b];
    for (int i = 0; i < b; i++) {
      Row r = active.get(i);
      ids[r.slot] = r.next;
      pos[r.slot] = r.position++;
      slotOf[i] = r.slot;
    }
    List<Row> finished;
    try (NoGrad g = NoGrad.enter(); NDManager s = store.newSubManager()) {
      NDArray logits = slots.step(ids, pos); // (slots, V)
      SlotPickGraph graph = pickGraph(logits, slotOf);
      if (graph != null) {
        float[] u = new float[b];
        for (int i = 0; i < b; i++) {
          u[i] = DevicePicker.uniform(active.get(i).rng);
        }
        double[] picked = graph.pick(u);
        pickGraphFailed |= graph.failed();
        long[] tokens = new long[b];
        float[] logps = new float[b];
        for (int i = 0; i < b; i++) {
          tokens[i] = (long) picked[i];
          logps[i] = (float) picked[b + i];
        }
        @SuppressWarnings("unchecked")
        Map<Long, Float>[] noTops = new Map[b];
        finished = advanceAll(active, tokens, logps, noTops);
      } else {
        finished = pickAll(active, logits.get(s.create(slotOf)), true, s);
      }
      runningPickerSteps++;
    }
    steps++;
    rowSteps += b;
    remove(finished);
    return true;
  }

  /**
   * Picks the next token of every row from its logits and moves the rows on: on the device for rows without a host
   * picker (one draw each from its stream, one (2, n) copy back), on the host for the others (only their logits
   * are copied).
   *
   * @param logits (n, V) or (n, 1, V) float32, row i for rows.get(i)
   * @param running whether {@code rows} are the running batch (its device picker is kept between steps)
   * @return the rows that ended
   */
  private List<Row> pickAll(List<Row> rows, NDArray logits, boolean running, NDManager s) {
    int n = rows.size();
    int vocab = model.config().vocabSize();
    long[] tokens = new long[n];
    float[] logps = new float[n];
    long[] onHost = new long[n]; // the rows picked on the host
    int hostRows = 0;
    float[] u = new float[n];
    for (int i = 0; i < n; i++) {
      Row r = rows.get(i);
      if (r.picker != null) {
        onHost[hostRows++] = i;
      } else {
        u[i] = DevicePicker.uniform(r.rng);
      }
    }
    if (hostRows < n) {
      DevicePicker p = running ? runningPicker(rows) : newPicker(rows);
      try {
        double[] picked = p.pick(logits.reshape(n, vocab), s.create(u), s).toDoubleArray(); // tokens, log-probs
        for (int i = 0; i < n; i++) {
          tokens[i] = (long) picked[i];
          logps[i] = (float) picked[n + i];
        }
      } finally {
        if (!running) {
          p.close();
        }
      }
    }
    @SuppressWarnings("unchecked")
    Map<Long, Float>[] tops = new Map[n];
    if (hostRows > 0) {
      float[] host = (hostRows == n ? logits : logits.get(s.create(Arrays.copyOf(onHost, hostRows)))).toFloatArray();
      float[] row = new float[vocab];
      for (int k = 0; k < hostRows; k++) {
        int i = (int) onHost[k];
        Row r = rows.get(i);
        System.arraycopy(host, k * vocab, row, 0, vocab);
        tokens[i] = r.picker.pick(row, r.seen, r.seenLen, r.rng);
        logps[i] = r.picker.lastLogProb(tokens[i]);
        tops[i] = r.seq.topLogprobs() > 0 ? r.picker.lastTopLogProbs(r.seq.topLogprobs()) : null;
      }
    }
    return advanceAll(rows, tokens, logps, tops);
  }

  /** {@link #advance} for each row; returns the rows that ended. */
  private List<Row> advanceAll(List<Row> rows, long[] tokens, float[] logps, Map<Long, Float>[] tops) {
    List<Row> finished = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) {
      if (!advance(rows.get(i), tokens[i], logps[i], tops[i])) {
        finished.add(rows.get(i));
      }
    }
    return finished;
  }

  /**
   * The captured pick of the running rows, when the slot step replays a graph, every row is picked on the device,
   * and the rows have stayed the same for a few steps (a batch whose rows change every step would capture for
   * nothing); null: pick eagerly.
   */
  private SlotPickGraph pickGraph(NDArray logits, long[] slotOf) {
    if (pickGraphFailed || !slots.isGraphOutput(logits) || runningPicker == null || runningPickerSteps < 3) {
      return null;
    }
    for (Row r : active) {
      if (r.picker != null) {
        return null;
      }
    }
    if (pickGraph != null && !pickGraph.reads(logits, runningPicker)) {
      pickGraph.close(); // the slots changed shape under the same rows
      pickGraph = null;
    }
    if (pickGraph == null) {
      pickGraph = new SlotPickGraph(store, model.device(), logits, runningPicker, slotOf);
    }
    return pickGraph;
  }

  /** The running rows' device picker, made (and loaded with each row's tokens so far) after the rows changed. */
  private DevicePicker runningPicker(List<Row> rows) {
    if (runningPicker == null) {
      runningPicker = newPicker(rows);
    }
    return runningPicker;
  }

  /** A device picker for these rows: their sampling parameters, and their prompt and completion tokens so far. */
  private DevicePicker newPicker(List<Row> rows) {
    int vocab = model.config().vocabSize();
    SamplingParams[] params = new SamplingParams[rows.size()];
    long[][] seen = new long[rows.size()][];
    for (int i = 0; i < params.length; i++) {
      Row r = rows.get(i);
      params[i] = r.seq.params();
      seen[i] = Arrays.copyOf(r.seen, r.seenLen);
    }
    DevicePicker p = new DevicePicker(store, params.length, vocab, DevicePicker.Filters.of(Arrays.asList(params),
        vocab));
    try {
      p.load(params, seen);
    } catch (RuntimeException | Error e) {
      p.close();
      throw e;
    }
    return p;
  }

  private void dropRunningPicker() {
    if (pickGraph != null) {
      pickGraph.close();
      pickGraph = null;
    }
    if (runningPicker != null) {
      runningPicker.close();
      runningPicker = null;
    }
    runningPickerSteps = 0;
  }

  /** Records the row's picked token and tells its sink; false when the row is done. */
  private boolean advance(Row r, long tok, float lp, Map<Long, Float> top) {
    r.seen[r.seenLen++] = tok;
    r.generated++;
    r.next = tok;
    r.seq.sink().token(tok, lp, top);
    SamplingParams p = r.seq.params();
    if (p.isStop(tok) || r.seq.stopCheck() != null && r.seq.stopCheck().stop(tok)) {
      r.seq.sink().done("stop");
      return false;
    }
    if (r.generated >= p.maxNewTokens()) {
      r.seq.sink().done("length");
      return false;
    }
    return true;
  }

  /** Drops finished rows from the batch and the cache, and positions no remaining row uses. */
  private void remove(List<Row> finished) {
    if (finished.isEmpty()) {
      return;
    }
    java.util.Set<Row> gone = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    gone.addAll(finished);
    if (slots != null) {
      for (Row r : finished) {
        if (r.slot >= 0) {
          slots.free(r.slot);
          r.slot = -1;
        }
      }
      active.removeIf(gone::contains);
      dropRunningPicker();
      return;
    }
    // a finished row's place goes to the last running row (the cache copies only the rows that move)
    int n = active.size();
    int kept = n - (int) active.stream().filter(gone::contains).count();
    long[] order = new long[kept];
    int tail = n - 1;
    for (int i = 0; i < kept; i++) {
      if (!gone.contains(active.get(i))) {
        order[i] = i;
      } else {
        while (gone.contains(active.get(tail))) {
          tail--;
        }
        order[i] = tail--;
      }
    }
    List<Row> keep = new ArrayList<>(kept);
    for (long i : order) {
      keep.add(active.get((int) i));
    }
    active.clear();
    active.addAll(keep);
    dropRunningPicker();
    if (keep.isEmpty()) {
      cache.close();
      cache = null;
      return;
    }
    cache.selectRows(order);
    // left positions that every remaining row masks out (room left by long prompts that have gone)
    int unused = cache.length();
    for (Row r : keep) {
      int first = 0;
      while (first < r.keyMask.length && r.keyMask[first] == 0) {
        first++;
      }
      unused = Math.min(unused, first);
    }
    if (unused > 0) {
      cache.trimLeft(unused);
      for (Row r : keep) {
        r.keyMask = Arrays.copyOfRange(r.keyMask, unused, r.keyMask.length);
      }
    }
  }

  /** Ends every running sequence (the server is shutting down). */
  public void abort(String reason) {
    for (Row r : active) {
      r.seq.sink().done(reason);
      if (slots != null && r.slot >= 0) {
        slots.free(r.slot);
      }
    }
    active.clear();
    dropRunningPicker();
    if (cache != null) {
      cache.close();
      cache = null;
    }
  }

  @Override
  public void close() {
    abort("abort");
    if (slots != null) {
      slots.close();
    }
    store.close();
  }
}
