package io.grpo4j.datasets;

/**
 * Where an iteration stands: epoch and the index of the next example in that epoch's order. Saved with each
 * checkpoint so a resumed run continues with the next unseen row.
 */
public record DataPosition(int epoch, int cursor) {
  public static final DataPosition START = new DataPosition(0, 0);
}
