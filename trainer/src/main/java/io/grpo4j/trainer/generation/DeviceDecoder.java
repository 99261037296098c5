package io.grpo4j.trainer.generation;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.device.CudaGraph;
import io.grpo4j.trainer.device.NativeTorch;
import io.grpo4j.trainer.model.AttentionBias;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HostStaging;
import io.grpo4j.trainer.model.KvCache;
import io.grpo4j.trainer.model.NoGrad;
import io.grpo4j.trainer.model.StaticKvCache;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Decoding for GPUs: every step has the same shapes (all rows stay in the batch until the last one finishes, keys
 * and values go into a {@link StaticKvCache}), tokens are picked on the device ({@link DevicePicker}), and only the
 * picked tokens and their log-probs come back to the host, 16 bytes a row. With grpo4j's native library on CUDA the
 * step is captured once as a CUDA graph and replayed: a step then costs its kernels, not ~800 host-side op launches.
 *
 * <p>Graphs (with their cache and inputs) are kept per batch shape, so the GRPO loop, which samples the same shape
 * every step, captures once. Row counts are rounded up to a few sizes (padding rows decode unread), so a server's
 * varying batches reuse a handful of graphs. Same results as {@link Sampler}'s host path up to float32 vs float64 summation in the
 * draw; same streams per completion, so a seeded completion does not depend on its batch.
 */
final class DeviceDecoder implements AutoCloseable {
  private static final int CAPACITY_STEP = 64; // cache lengths are rounded up to this, so shapes repeat
  private static final int KEPT_SHAPES = 3;
  private final CausalLM model;
  private final int padId;
  private final boolean graphs;
  private final Map<Key, Shape> shapes = new LinkedHashMap<>(); // least recently used first
  private final HostStaging staging = new HostStaging(3);

  DeviceDecoder(CausalLM model, int padId) {
    this.model = model;
    this.padId = padId;
    this.graphs = CudaGraph.supported(model.device());
  }

  boolean usesGraphs() {
    return graphs;
  }

  /** What a captured step depends on. */
  private record Key(int rows, int capacity, DevicePicker.Filters filters, Object precision) {}

  /**
   * Decodes the rows of {@code b}, whose prompts were prefilled into {@code prefill} (one row per request, left-padded
   * to {@code b.promptLength}); each picked token goes to {@link SampledRows#accept}, which says whether its row goes
   * on.
   *
   * @param firstLogits (requests, V) float32: the prefill's last-position logits
   */
  void decode(SampledRows b, KvCache prefill, NDArray firstLogits) {
    int rows = b.rows;
    int lp = b.promptLength;
    int maxNew = b.maxNew;
    int[] promptRows = b.requestOf;
    int requests = b.requests.size();
    int[][] promptMask = new int[requests][];
    long[][] prompts = new long[requests][];
    for (int i = 0; i < requests; i++) {
      prompts[i] = b.requests.get(i).prompt();
      promptMask[i] = b.promptMask[b.firstRow[i]];
    }
    SamplingParams[] params = new SamplingParams[rows];
    for (int r = 0; r < rows; r++) {
      params[r] = b.params(r);
    }
    SplittableRandom[] rng = b.rng;
    int vocab = model.config().vocabSize();
    int slots = slots(rows);
    int capacity = roundUp(lp + maxNew, CAPACITY_STEP);
    // padding rows repeat row 0's prompt and parameters, run with it and are never read
    int[] slotPrompt = Arrays.copyOf(promptRows, slots);
    SamplingParams[] slotParams = Arrays.copyOf(params, slots);
    long[] position = Arrays.copyOf(b.nextPosition, slots);
    for (int r = rows; r < slots; r++) {
      slotPrompt[r] = promptRows[0];
      slotParams[r] = params[0];
      position[r] = b.nextPosition[0];
    }
    Key key = new Key(slots, capacity, DevicePicker.Filters.of(Arrays.asList(params), vocab), model.precision());
    Shape s = shapes.remove(key);
    if (s == null) {
      s = new Shape(key);
      while (shapes.size() >= KEPT_SHAPES) {
        Iterator<Map.Entry<Key, Shape>> it = shapes.entrySet().iterator();
        it.next().getValue().close();
        it.remove();
      }
    }
    shapes.put(key, s);
    s.start(lp, slotPrompt, promptMask, prompts, slotParams, prefill);
    long[] ids = new long[slots];
    float[] u = new float[slots];
    boolean[] running = new boolean[slots];
    Arrays.fill(running, 0, rows, true);
    double[] picked;
    try (NDManager first = s.store.newSubManager()) {
      // the prefill's logits give the first token of every row
      NDArray expanded = firstLogits.get(first.create(toLongs(slotPrompt)));
      draw(rng, running, u);
      picked = s.pickOnly(expanded, u, first);
    }
    for (int step = 0; ; step++) {
      int alive = 0;
      for (int r = 0; r < rows; r++) {
        if (running[r]) {
          running[r] = b.accept(r, (long) picked[r], (float) picked[slots + r]);
          alive += running[r] ? 1 : 0;
        }
      }
      if (alive == 0 || step + 1 >= maxNew) {
        break;
      }
      for (int r = 0; r < slots; r++) {
        ids[r] = running[r] ? (long) picked[r] : padId; // finished and padding rows decode padding, unread
      }
      draw(rng, running, u);
      picked = s.step(ids, position, lp + step, u);
      for (int r = 0; r < slots; r++) {
        position[r]++;
      }
    }
  }

  /** Batch rows rounded up: 8, then multiples of 16 up to 128, then of 64. */
  static int slots(int rows) {
    if (rows <= 8) {
      return 8;
    }
    return rows <= 128 ? roundUp(rows, 16) : roundUp(rows, 64);
  }

  /** One uniform number per running row from its own stream (finished rows draw nothing: streams stay aligned). */
  private static void draw(SplittableRandom[] rng, boolean[] running, float[] u) {
    for (int r = 0; r < u.length; r++) {
      u[r] = running[r] ? DevicePicker.uniform(rng[r]) : 0f;
    }
  }

  private static int roundUp(int n, int step) {
    return (n + step - 1) / step * step;
  }

  private static long[] toLongs(int[] a) {
    long[] out = new long[a.length];
    for (int i = 0; i < a.length; i++) {
      out[i] = a[i];
    }
    return out;
  }

  @Override
  public void close() {
    shapes.values().forEach(Shape::close);
    shapes.clear();
  }

  /**
   * Everything a step of one shape needs, allocated once: the cache, the attention bias over its positions, the
   * per-step inputs (token ids, positions, the write position: one int64 tensor; the uniform draws), the picker, and
   * the captured graph with its output.
   */
  private final class Shape implements AutoCloseable {
    private final Key key;
    private final NDManager store;
    private final StaticKvCache cache;
    private final NDArray bias; // (R, 1, 1, capacity) float32
    private final StepInputs inputs; // ids | positions | write position
    private final NDArray uniforms; // (R) float32
    private final DevicePicker picker;
    private final ByteBuffer uniformBytes;
    private CudaGraph graph;
    private NDArray graphOutput; // (2, R) float64, written by every replay
    private boolean graphFailed;

    Shape(Key key) {
      this.key = key;
      int r = key.rows();
      store = model.manager().newSubManager();
      cache = new StaticKvCache(model.config(), store, r, key.capacity(), model.precision().computeType());
      bias = store.full(new ai.djl.ndarray.types.Shape(r, 1, 1, key.capacity()), AttentionBias.MASKED);
      inputs = new StepInputs(store, r, cache);
      uniforms = store.zeros(new ai.djl.ndarray.types.Shape(r));
      picker = new DevicePicker(store, r, model.config().vocabSize(), key.filters());
      uniformBytes = ByteBuffer.allocateDirect(r * 4).order(ByteOrder.nativeOrder());
    }

    /** Loads a new batch: the prefilled prompts into the cache, their padding into the bias, the sampling rules. */
    void start(int lp, int[] promptRows, int[][] promptMask, long[][] prompts, SamplingParams[] params,
        KvCache prefill) {
      int r = key.rows();
      float[] b = new float[r * key.capacity()];
      Arrays.fill(b, AttentionBias.MASKED);
      long[][] rowPrompts = new long[r][];
      for (int i = 0; i < r; i++) {
        int[] mask = promptMask[promptRows[i]];
        for (int t = 0; t < lp; t++) {
          b[i * key.capacity() + t] = mask[t] != 0 ? 0f : AttentionBias.MASKED;
        }
        rowPrompts[i] = prompts[promptRows[i]];
      }
      try (NDManager tmp = store.newSubManager()) {
        bias.set(new NDIndex("..."), tmp.create(b, bias.getShape()));
        cache.fill(prefill, tmp.create(toLongs(promptRows)));
      }
      picker.load(params, rowPrompts);
    }

    /** Picks from given logits (the prefill's), without a forward. */
    double[] pickOnly(NDArray logits, float[] u, NDManager m) {
      NDArray uu = staging.floats(m, 2, u, new ai.djl.ndarray.types.Shape(u.length));
      return picker.pick(logits, uu, m).toDoubleArray();
    }

    /** One decoding step: feeds {@code tokens} at {@code positions}, writing cache position {@code write}. */
    double[] step(long[] tokens, long[] pos, int write, float[] u) {
      upload(tokens, pos, write, u);
      if (graph != null) {
        graph.replay();
        return graphOutput.toDoubleArray();
      }
      if (graphs && !graphFailed) {
        return captureAndRun();
      }
      try (NDManager m = store.newSubManager()) {
        return forward(m).toDoubleArray();
      }
    }

    /** The step's ops: mark the written position as attendable, forward one token, pick. */
    private NDArray forward(NDManager m) {
      try (NoGrad g = NoGrad.enter()) {
        NDArray rowsV = inputs.logits(model, bias, cache, m);
        NDArray uView = uniforms.get(new NDIndex("..."));
        uView.attach(m);
        return picker.pick(rowsV, uView, m);
      }
    }

    /**
     * The first step of a new shape on CUDA: run it for real on the capture stream (warm-up), then record it; later
     * steps replay. A capture that fails (an op that cannot be recorded) leaves this shape eager, with a warning.
     */
    private double[] captureAndRun() {
      CudaGraph.Captured<double[]> c = CudaGraph.runThenCapture(model.device(), store, this::forward, "sampling");
      graph = c.graph();
      graphOutput = c.output();
      graphFailed = graph == null;
      return c.first();
    }

    private void upload(long[] tokens, long[] pos, int write, float[] u) {
      inputs.upload(tokens, pos, write);
      uniformBytes.clear();
      uniformBytes.asFloatBuffer().put(u);
      if (NativeTorch.available()) {
        NativeTorch.copyFromHost(uniforms, uniformBytes);
        return;
      }
      try (NDManager tmp = store.newSubManager()) {
        uniforms.set(new NDIndex("..."), tmp.create(u));
      }
    }

    @Override
    public void close() {
      if (graph != null) {
        graph.close();
      }
      store.close();
    }
  }

  /** For bench and tests: whether a device the model is on gets this decoder by default. */
  static boolean defaultFor(Device device) {
    String forced = System.getProperty("grpo4j.sampler");
    if (forced != null) {
      return forced.equals("device");
    }
    return device.isGpu();
  }
}
