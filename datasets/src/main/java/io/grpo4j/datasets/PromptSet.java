package io.grpo4j.datasets;

import io.grpo4j.datasets.source.RawRows;
import java.util.List;

/**
 * An ordered view of examples: a subset of the rows of one or more sources (by global row number), mapped to
 * {@link Example}s on access. Only the row numbers are held in memory.
 */
public final class PromptSet {
  private final List<RawRows> sources;
  private final long[] offsets; // cumulative row counts of the sources
  private final int[] rows; // global row numbers in this set
  private final FieldMapping mapping;
  private final List<Example> generated; // synthetic tasks: examples held directly, rows index into them

  PromptSet(List<RawRows> sources, int[] rows, FieldMapping mapping) {
    this.sources = sources;
    this.rows = rows;
    this.mapping = mapping;
    this.generated = null;
    this.offsets = new long[sources.size() + 1];
    for (int i = 0; i < sources.size(); i++) {
      offsets[i + 1] = offsets[i] + sources.get(i).size();
    }
  }

  PromptSet(List<Example> generated, int[] rows) {
    this.sources = List.of();
    this.offsets = new long[] {0};
    this.rows = rows;
    this.mapping = null;
    this.generated = generated;
  }

  public int size() {
    return rows.length;
  }

  /** Maps the i-th example; a malformed row throws {@link DatasetException} naming file, line and field. */
  public Example get(int i) {
    int global = rows[i];
    if (generated != null) {
      return generated.get(global);
    }
    int s = 0;
    while (offsets[s + 1] <= global) {
      s++;
    }
    RawRows src = sources.get(s);
    int local = (int) (global - offsets[s]);
    return mapping.map(src.location(local), src.row(local));
  }

  int globalRow(int i) {
    return rows[i];
  }

  PromptSet subset(int[] indices) {
    int[] r = new int[indices.length];
    for (int k = 0; k < indices.length; k++) {
      r[k] = rows[indices[k]];
    }
    return generated != null ? new PromptSet(generated, r) : new PromptSet(sources, r, mapping);
  }
}
