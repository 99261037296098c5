package io.grpo4j.rewards.sandbox;

/** How untrusted programs are isolated; {@link Sandbox#detect} picks the strongest one that works here. */
public enum Isolation {
  /** bubblewrap namespaces (no network, private pid/ipc, read-only system, private /tmp) + rlimits + unprivileged uid. */
  BWRAP,
  /** rlimits + unprivileged uid (+ no network and a private pid namespace via unshare where allowed). */
  RLIMIT_ONLY,
  /** Nothing: only with an explicit {@code allow_unsandboxed: true}. */
  NONE
}
