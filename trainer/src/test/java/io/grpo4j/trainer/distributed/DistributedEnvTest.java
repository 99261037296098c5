package io.grpo4j.trainer.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** The launcher variables torchrun, SLURM and Kubernetes set, and the errors that name a missing or bad one. */
class DistributedEnvTest {
  @Test
  void readsTorchrunsVariables() {
    DistributedEnv e = DistributedEnv.from(Map.of("RANK", "3", "WORLD_SIZE", "8", "LOCAL_RANK", "1",
        "MASTER_ADDR", "node-0", "MASTER_PORT", "29500"));
    assertEquals(new DistributedEnv(3, 8, 1, "node-0", 29500), e);
    assertTrue(e.distributed());
    assertFalse(e.leader());
    assertEquals(DistributedEnv.SINGLE, DistributedEnv.from(Map.of()));
    assertEquals(DistributedEnv.SINGLE, DistributedEnv.from(Map.of("WORLD_SIZE", "1")));
    // LOCAL_RANK defaults to RANK (one host)
    assertEquals(2, DistributedEnv.from(Map.of("RANK", "2", "WORLD_SIZE", "4", "MASTER_ADDR", "h",
        "MASTER_PORT", "1")).localRank());
  }

  @Test
  void aMissingOrBadVariableIsNamed() {
    String[][] cases = {
        {"RANK", "WORLD_SIZE=2 MASTER_ADDR=h MASTER_PORT=1"},
        {"MASTER_ADDR", "WORLD_SIZE=2 RANK=0 MASTER_PORT=1"},
        {"MASTER_PORT", "WORLD_SIZE=2 RANK=0 MASTER_ADDR=h MASTER_PORT=x"},
        {"RANK", "WORLD_SIZE=2 RANK=2 MASTER_ADDR=h MASTER_PORT=1"},
        {"WORLD_SIZE", "WORLD_SIZE=two RANK=0 MASTER_ADDR=h MASTER_PORT=1"},
    };
    for (String[] c : cases) {
      Map<String, String> env = new java.util.HashMap<>();
      for (String kv : c[1].split(" ")) {
        env.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
      }
      var e = assertThrows(IllegalArgumentException.class, () -> DistributedEnv.from(env));
      assertTrue(e.getMessage().startsWith(c[0]), c[1] + " -> " + e.getMessage());
    }
  }
}
