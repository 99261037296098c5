package io.grpo4j.trainer.model;

/** A model folder, config or tensor file that grpo4j cannot use; the message names the file and the key or tensor. */
public class ModelFormatException extends RuntimeException {
  public ModelFormatException(String message) {
    super(message);
  }

  public ModelFormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
