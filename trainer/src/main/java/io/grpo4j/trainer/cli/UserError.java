package io.grpo4j.trainer.cli;

/** A problem with what the user gave (a file, a key, a flag); printed as one line, exit code 2. */
public class UserError extends RuntimeException {
  public UserError(String message) {
    super(message);
  }
}
