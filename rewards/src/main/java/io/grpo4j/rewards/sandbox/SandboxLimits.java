package io.grpo4j.rewards.sandbox;

/**
 * Limits for one sandboxed run.
 *
 * @param wallSeconds wall-clock limit; the whole process tree is killed when it passes
 * @param cpuSeconds CPU-time limit (RLIMIT_CPU)
 * @param memoryMb address-space limit (RLIMIT_AS)
 * @param maxProcesses process/thread limit for the sandbox's uid (RLIMIT_NPROC)
 * @param maxOutputKb stdout and stderr are each cut at this size and the run is stopped
 * @param maxFileKb largest file the program may write (RLIMIT_FSIZE)
 */
public record SandboxLimits(
    double wallSeconds, int cpuSeconds, int memoryMb, int maxProcesses, int maxOutputKb, int maxFileKb) {
  public SandboxLimits {
    if (!(wallSeconds > 0) || cpuSeconds < 1 || memoryMb < 16 || maxProcesses < 1 || maxOutputKb < 1
        || maxFileKb < 1) {
      throw new IllegalArgumentException("sandbox limits must be positive (memory >= 16 MB): " + this);
    }
  }

  public static SandboxLimits defaults() {
    return new SandboxLimits(5, 5, 512, 32, 1024, 10 * 1024);
  }
}
