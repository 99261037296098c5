package io.grpo4j.datasets.source;

import java.util.Map;

/**
 * Random access to the rows of one data file as plain maps (JSON-like values), each with the location a person
 * needs in an error message. Implementations may keep only an index in memory.
 */
public interface RawRows extends AutoCloseable {
  int size();

  /** The row's columns; throws {@link io.grpo4j.datasets.DatasetException} naming file and line if malformed. */
  Map<String, Object> row(int index);

  /** "file:line" (or "file row N") for messages. */
  String location(int index);

  @Override
  default void close() {}
}
