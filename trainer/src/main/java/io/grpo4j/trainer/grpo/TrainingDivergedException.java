package io.grpo4j.trainer.grpo;

/** Too many consecutive steps with a non-finite loss or gradient; the last checkpoint is left intact. */
public class TrainingDivergedException extends RuntimeException {
  public TrainingDivergedException(String message) {
    super(message);
  }
}
