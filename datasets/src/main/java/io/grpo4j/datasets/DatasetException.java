package io.grpo4j.datasets;

/** A data file or dataset config problem; the message names the file, line (or row) and field. */
public class DatasetException extends RuntimeException {
  public DatasetException(String message) {
    super(message);
  }

  public DatasetException(String message, Throwable cause) {
    super(message, cause);
  }
}
