package io.grpo4j.datasets.source;

import java.util.List;
import java.util.Map;

/** Rows already parsed (JSON arrays, CSV, Parquet): small-to-medium files where an index buys nothing. */
public final class InMemoryRows implements RawRows {
  private final String file;
  private final String unit; // "row", "element"
  private final List<Map<String, Object>> rows;
  private final int firstNumber; // what to call row 0 (CSV: its line number after the header)

  public InMemoryRows(String file, String unit, List<Map<String, Object>> rows, int firstNumber) {
    this.file = file;
    this.unit = unit;
    this.rows = rows;
    this.firstNumber = firstNumber;
  }

  @Override
  public int size() {
    return rows.size();
  }

  @Override
  public Map<String, Object> row(int index) {
    return rows.get(index);
  }

  @Override
  public String location(int index) {
    return file + ":" + unit + " " + (index + firstNumber);
  }
}
