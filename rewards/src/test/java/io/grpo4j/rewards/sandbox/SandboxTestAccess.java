package io.grpo4j.rewards.sandbox;

/** What the sandbox tests of other packages need to know about this machine. */
public final class SandboxTestAccess {
  private SandboxTestAccess() {}

  public static boolean isRoot() {
    return Sandbox.isRoot();
  }
}
