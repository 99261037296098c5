package io.grpo4j.trainer.generation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.device.CudaGraph;
import io.grpo4j.trainer.model.AttentionBias;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.KvCache;
import io.grpo4j.trainer.model.NoGrad;
import io.grpo4j.trainer.model.StaticKvCache;
import java.util.Arrays;

/**
 * Continuous batching's decoding step with shapes that do not change from step to step, so that on CUDA it is
 * captured once as a graph and replayed ({@link CudaGraph}): eagerly, a step of a 24-layer model launches ~800 ops at
 * ~14 us of host time each (12 ms), where the replayed graph costs its kernels.
 *
 * <p>Sequences occupy slots (rows) of a {@link StaticKvCache} of fixed rows x capacity. All slots write the same
 * column each step; a newcomer's prefilled keys and values are copied into its slot so that its prompt ends at that
 * column, with the columns on its left masked in its row of the attention bias (the same right alignment as
 * {@link ContinuousBatcher}'s growing cache). A sequence that leaves frees its slot, copying nothing. When the write
 * column reaches the capacity, the columns that no running sequence uses any more are dropped on the left; when
 * there are none, the capacity doubles, and when sequences outnumber the slots, the slots double: each new shape
 * captures its own graph. Free slots decode a padding token, unread.
 */
final class SlotDecoding implements AutoCloseable {
  static final int FIRST_CAPACITY = 256;
  private static final int KEPT_SHAPES = 3; // the current one and the two used before it
  private final CausalLM model;
  private final boolean graphs;
  private final NDManager parent;
  private final int firstCapacity;
  private Slots slots;
  private final java.util.LinkedHashMap<Long, Slots> kept = new java.util.LinkedHashMap<>(); // oldest first
  private int moves; // column moves so far (left to drop unused columns, right to fit a longer prompt)

  /**
   * @param graphs whether to capture the step as a CUDA graph ({@link CudaGraph#supported} for the model's device)
   * @param firstCapacity positions of the first buffers (rounded up to 64)
   */
  SlotDecoding(CausalLM model, NDManager parent, boolean graphs, int firstCapacity) {
    this.model = model;
    this.parent = parent;
    this.graphs = graphs;
    this.firstCapacity = roundUp(firstCapacity, 64);
  }

  /** The current buffers' slots and positions, and the column moves so far. */
  record Extent(int rows, int capacity, int moves) {}

  Extent extent() {
    return new Extent(rows(), slots == null ? 0 : slots.capacity, moves);
  }

  /** Slots in the current buffers (0 before the first sequence joined). */
  int rows() {
    return slots == null ? 0 : slots.rows;
  }

  boolean capturedGraph() {
    return slots != null && slots.graph != null;
  }

  /** Whether {@code logits} is the replayed graph's output (stays in place while the slots keep their shape). */
  boolean isGraphOutput(NDArray logits) {
    return slots != null && slots.graph != null && logits == slots.graphOutput;
  }

  /**
   * Copies newly prefilled sequences into free slots.
   *
   * @param prefill their prompts' cache, (prompts, kv heads, lp, D), each prompt left-padded to {@code lp}
   * @param source per newcomer, its prompt's row in {@code prefill}
   * @param promptMask per prompt row, 1 where the prefill holds one of its tokens
   * @return per newcomer, its slot
   */
  int[] join(KvCache prefill, int lp, long[] source, int[][] promptMask) {
    int n = source.length;
    int used = slots == null ? 0 : slots.used();
    // an empty batch starts over at the size it needs (a lone request after a burst does not decode 64 slots); a
    // running one only grows. The newcomers' prompts end at the write column: room for lp columns and one step
    int rows = used == 0 ? DeviceDecoder.slots(n) : Math.max(rows(), DeviceDecoder.slots(used + n));
    int capacity = Math.max(used == 0 ? firstCapacity : slots.capacity, roundUp(lp + 1, 64));
    if (slots == null || rows != slots.rows || capacity != slots.capacity) {
      reshape(rows, capacity);
    }
    Slots s = slots;
    if (s.used() == 0) {
      s.write = lp;
    } else if (s.write < lp) {
      s.shift(lp - s.write); // to the right: the running rows' columns move, the newcomer's prompt fits on the left
    }
    int[] slotOf = new int[n];
    try (NoGrad g = NoGrad.enter(); NDManager tmp = s.store.newSubManager()) {
      for (int j = 0; j < n; j++) {
        int slot = s.freeSlot();
        slotOf[j] = slot;
        int row = (int) source[j];
        s.cache.loadRow(slot, s.write - lp, prefill, row);
        float[] b = new float[s.capacity];
        Arrays.fill(b, AttentionBias.MASKED);
        int first = s.write;
        for (int t = 0; t < lp; t++) {
          if (promptMask[row][t] != 0) {
            b[s.write - lp + t] = 0f;
            first = Math.min(first, s.write - lp + t);
          }
        }
        s.bias.set(new NDIndex("{}", slot), tmp.create(b, new Shape(1, 1, s.capacity)));
        s.start[slot] = first;
      }
    }
    return slotOf;
  }

  /** The sequence in {@code slot} has ended; its slot is free for the next newcomer. */
  void free(int slot) {
    slots.start[slot] = -1;
    if (slots.used() == 0) {
      slots.write = 0;
    }
  }

  /**
   * One decoding step for every slot.
   *
   * @param tokens per slot, the token to feed (free slots: any, e.g. padding)
   * @param positions per slot, its position id
   * @return (rows, V) float32 logits, valid until the next step
   */
  NDArray step(long[] tokens, long[] positions) {
    if (slots.write == slots.capacity) {
      int unused = slots.firstUsed();
      if (unused > 0) {
        slots.shift(-unused);
      } else {
        reshape(slots.rows, slots.capacity * 2);
      }
    }
    NDArray out = slots.step(tokens, positions);
    slots.write++;
    return out;
  }

  /**
   * Moves every running sequence into buffers of a new shape (same slots, same columns). The shapes used last are
   * kept with their captured graphs, so a server that goes between a burst and a lone request captures each once.
   */
  private void reshape(int rows, int capacity) {
    long key = (long) rows << 32 | capacity;
    Slots next = kept.remove(key);
    if (next == null) {
      next = new Slots(rows, capacity);
    } else { // a shape used before: its columns may still be marked attendable for sequences long gone
      Arrays.fill(next.start, -1);
      next.write = 0;
      next.bias.set(new NDIndex("..."), AttentionBias.MASKED);
    }
    if (slots != null) {
      if (slots.used() > 0) {
        next.copyFrom(slots);
      }
      kept.put((long) slots.rows << 32 | slots.capacity, slots);
      java.util.Iterator<Slots> oldest = kept.values().iterator();
      while (kept.size() > KEPT_SHAPES - 1) {
        oldest.next().close();
        oldest.remove();
      }
    }
    slots = next;
  }

  private static int roundUp(int n, int step) {
    return (n + step - 1) / step * step;
  }

  @Override
  public void close() {
    if (slots != null) {
      slots.close();
      slots = null;
    }
    kept.values().forEach(Slots::close);
    kept.clear();
  }

  /** The buffers, inputs and captured graph of one shape. */
  private final class Slots implements AutoCloseable {
    final int rows;
    final int capacity;
    final NDManager store;
    final StaticKvCache cache;
    final NDArray bias; // (R, 1, 1, capacity) float32
    final StepInputs inputs;
    final int[] start; // per slot: the first column its sequence uses; -1 when free
    int write; // the column the next step writes
    CudaGraph graph;
    NDArray graphOutput; // (R, V) float32, written by every replay
    boolean graphFailed;

    Slots(int rows, int capacity) {
      this.rows = rows;
      this.capacity = capacity;
      store = parent.newSubManager();
      cache = new StaticKvCache(model.config(), store, rows, capacity, model.precision().computeType());
      bias = store.full(new Shape(rows, 1, 1, capacity), AttentionBias.MASKED);
      inputs = new StepInputs(store, rows, cache);
      start = new int[rows];
      Arrays.fill(start, -1);
    }

    int used() {
      int n = 0;
      for (int s : start) {
        n += s >= 0 ? 1 : 0;
      }
      return n;
    }

    int freeSlot() {
      for (int i = 0; i < rows; i++) {
        if (start[i] < 0) {
          return i;
        }
      }
      throw new IllegalStateException("no free slot among " + rows);
    }

    /** The first column any running sequence uses (the write column when none runs). */
    int firstUsed() {
      int first = write;
      for (int s : start) {
        if (s >= 0) {
          first = Math.min(first, s);
        }
      }
      return first;
    }

    /** Moves the used columns [firstUsed, write) by {@code by} (right when positive), in cache and bias. */
    void shift(int by) {
      moves++;
      int from = firstUsed();
      try (NoGrad g = NoGrad.enter()) {
        cache.moveColumns(from, write, by);
        try (NDArray view = bias.get(new NDIndex(":, :, :, {}:{}", from, write)); NDArray part = view.duplicate()) {
          bias.set(new NDIndex(":, :, :, {}:{}", from + by, write + by), part);
        }
        if (by > 0) {
          bias.set(new NDIndex(":, :, :, {}:{}", from, from + by), AttentionBias.MASKED);
        } else {
          bias.set(new NDIndex(":, :, :, {}:{}", write + by, write), AttentionBias.MASKED);
        }
      }
      for (int i = 0; i < rows; i++) {
        if (start[i] >= 0) {
          start[i] += by;
        }
      }
      write += by;
    }

    /** Takes over {@code old}'s sequences: the same slots and columns (this shape has at least as many of both). */
    void copyFrom(Slots old) {
      try (NoGrad g = NoGrad.enter()) {
        cache.copyFrom(old.cache);
        bias.set(new NDIndex("0:{}, :, :, 0:{}", old.rows, old.capacity), old.bias);
      }
      System.arraycopy(old.start, 0, start, 0, old.rows);
      write = old.write;
    }

    NDArray step(long[] tokens, long[] pos) {
      inputs.upload(tokens, pos, write);
      if (graph != null) {
        graph.replay();
        return graphOutput;
      }
      if (graphs && !graphFailed) {
        return captureAndRun();
      }
      NDArray out = forward();
      out.attach(stepManager());
      return out;
    }

    private NDManager stepScope; // the eager path's result of the last step

    private NDManager stepManager() {
      if (stepScope != null) {
        stepScope.close();
      }
      stepScope = store.newSubManager();
      return stepScope;
    }

    /** Marks the write column attendable, forwards one token per slot: (R, V) float32 logits in {@code store}. */
    private NDArray forward() {
      try (NDManager m = store.newSubManager(); NoGrad g = NoGrad.enter()) {
        NDArray out = inputs.logits(model, bias, cache, m);
        out.attach(store);
        return out;
      }
    }

    /** The first step of a shape: run for real, then recorded for replays ({@link CudaGraph#runThenCapture}). */
    private NDArray captureAndRun() {
      CudaGraph.Captured<NDArray> c = CudaGraph.runThenCapture(model.device(), () -> {
        NDArray out = forward();
        out.attach(stepManager());
        return out;
      }, this::forward, "grpo serve: the decoding step");
      graph = c.graph();
      graphOutput = c.output();
      graphFailed = graph == null;
      return c.first();
    }

    @Override
    public void close() {
      if (graph != null) {
        graph.close();
      }
      store.close();
    }
  }
}
