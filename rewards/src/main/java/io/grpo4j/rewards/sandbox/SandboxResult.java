package io.grpo4j.rewards.sandbox;

/**
 * What a sandboxed run did.
 *
 * @param exitCode the program's exit status (-1 when it was killed by us)
 * @param timedOut the wall-clock limit was hit
 * @param outputExceeded stdout or stderr passed the output cap
 */
public record SandboxResult(int exitCode, String stdout, String stderr, boolean timedOut, boolean outputExceeded,
    long wallMillis) {
  public boolean ok() {
    return exitCode == 0 && !timedOut && !outputExceeded;
  }
}
