package io.grpo4j.datasets;

import java.util.function.ToIntFunction;

/**
 * Endless iteration over a {@link PromptSet}: a fresh seeded shuffle each epoch, rows whose prompt is longer
 * than the limit skipped (the length function comes from the trainer, which owns the tokenizer), malformed rows
 * skipped and counted when {@code skipBad}. The position is exact: {@link #seek} to a saved position yields the
 * very rows an uninterrupted iteration would have.
 */
public final class DataIterator {
  private final PromptSet set;
  private final long seed;
  private final boolean shuffle;
  private final ToIntFunction<Example> promptLength; // null = no length filter
  private final int maxPromptLength;
  private final boolean skipBad;
  private int epoch;
  private int cursor;
  private int[] order;
  private long skippedTooLong;
  private long skippedBad;

  public DataIterator(PromptSet set, long seed, boolean shuffle, ToIntFunction<Example> promptLength,
      int maxPromptLength, boolean skipBad) {
    if (set.size() == 0) {
      throw new DatasetException("the training set is empty (check dataset.path, limit and eval_fraction)");
    }
    this.set = set;
    this.seed = seed;
    this.shuffle = shuffle;
    this.promptLength = promptLength;
    this.maxPromptLength = maxPromptLength;
    this.skipBad = skipBad;
    seek(DataPosition.START);
  }

  public void seek(DataPosition p) {
    epoch = p.epoch();
    cursor = p.cursor();
    order = shuffle ? Dataset.permutation(set.size(), seed * 1_000_003L + epoch) : Dataset.range(set.size());
  }

  public DataPosition position() {
    return new DataPosition(epoch, cursor);
  }

  public int epoch() {
    return epoch;
  }

  public long skippedTooLong() {
    return skippedTooLong;
  }

  public long skippedBad() {
    return skippedBad;
  }

  public Example next() {
    int guard = 0;
    while (true) {
      if (cursor >= order.length) {
        epoch++;
        cursor = 0;
        order = shuffle ? Dataset.permutation(set.size(), seed * 1_000_003L + epoch) : Dataset.range(set.size());
      }
      Example e;
      try {
        e = set.get(order[cursor++]);
      } catch (DatasetException ex) {
        if (!skipBad) {
          throw ex;
        }
        skippedBad++;
        e = null;
      }
      if (e != null && (promptLength == null || maxPromptLength <= 0 || promptLength.applyAsInt(e) <= maxPromptLength)) {
        return e;
      }
      if (e != null) {
        skippedTooLong++;
      }
      if (++guard > 2 * set.size() + 10) {
        throw new DatasetException("no usable example in a whole pass over " + set.size() + " rows ("
            + skippedTooLong + " longer than max_prompt_length " + maxPromptLength + ", " + skippedBad + " malformed)");
      }
    }
  }
}
