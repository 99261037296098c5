package io.grpo4j.trainer.distributed;

import java.util.Map;

/**
 * Where this process sits in a data-parallel run, read the way torchrun, SLURM and Kubernetes launchers hand it over:
 * {@code RANK}, {@code WORLD_SIZE}, {@code LOCAL_RANK}, {@code MASTER_ADDR}, {@code MASTER_PORT}. Absent
 * {@code WORLD_SIZE} (or 1) is a single process.
 *
 * @param localRank the rank on this host: which GPU the process uses
 */
public record DistributedEnv(int rank, int worldSize, int localRank, String masterAddr, int masterPort) {
  public static final DistributedEnv SINGLE = new DistributedEnv(0, 1, 0, "127.0.0.1", 0);

  public boolean distributed() {
    return worldSize > 1;
  }

  public boolean leader() {
    return rank == 0;
  }

  public static DistributedEnv fromEnv() {
    return from(System.getenv());
  }

  /** Reads the variables; a missing or malformed one is an error naming it. */
  public static DistributedEnv from(Map<String, String> env) {
    String ws = env.get("WORLD_SIZE");
    if (ws == null || ws.isBlank() || ws.trim().equals("1")) {
      return SINGLE;
    }
    int world = number(env, "WORLD_SIZE", 1, 1 << 16);
    int rank = number(env, "RANK", 0, world - 1);
    int local = env.containsKey("LOCAL_RANK") ? number(env, "LOCAL_RANK", 0, world - 1) : rank;
    String addr = env.get("MASTER_ADDR");
    if (addr == null || addr.isBlank()) {
      throw new IllegalArgumentException("MASTER_ADDR is not set: the address of rank 0's host (WORLD_SIZE is "
          + world + ")");
    }
    int port = number(env, "MASTER_PORT", 1, 65535);
    return new DistributedEnv(rank, world, local, addr.trim(), port);
  }

  private static int number(Map<String, String> env, String name, int min, int max) {
    String v = env.get(name);
    if (v == null || v.isBlank()) {
      throw new IllegalArgumentException(name + " is not set (WORLD_SIZE > 1 needs RANK, MASTER_ADDR and"
          + " MASTER_PORT too)");
    }
    try {
      int x = Integer.parseInt(v.trim());
      if (x < min || x > max) {
        throw new IllegalArgumentException(name + "=" + v + " is outside [" + min + ", " + max + "]");
      }
      return x;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + "=" + v + " is not an integer");
    }
  }
}
