package io.grpo4j.rewards.builtin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardConfigException;
import io.grpo4j.rewards.sandbox.Isolation;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Without bubblewrap, rlimits + an unprivileged uid (+ unshare for network and pids, as root) still contain the
 * resource attacks; and no isolation at all is refused unless asked for.
 */
class RlimitOnlySandboxTest {
  static CodeTestReward reward(Map<String, Object> p) {
    return (CodeTestReward) new CodeTestReward.Provider().create(Params.validate("code_tests",
        new CodeTestReward.Provider().params(), p));
  }

  static double run(CodeTestReward r, String code) {
    return r.score(List.of(Completion.of("```python\n" + code + "\n```",
        Map.of("tests", List.of(Map.of("input", "", "output", "ok")))))).get(0);
  }

  @Test
  void resourceAttacksAreContained() {
    try (CodeTestReward r = reward(Map.of("sandbox", "rlimit-only", "timeout_s", 2.0))) {
      assertEquals(Isolation.RLIMIT_ONLY, r.sandbox().isolation());
      assertEquals(1.0, run(r, "print('ok')"));
      long t0 = System.nanoTime();
      assertEquals(0.0, run(r, "while True:\n    pass"));
      assertEquals(0.0, run(r, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"));
      assertEquals(0.0, run(r, "x = bytearray(8 * 1024 ** 3)\nprint('ok')"));
      assertEquals(0.0, run(r, "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 1_000_000)"));
      assertTrue((System.nanoTime() - t0) / 1e9 < 4 * 3.0, "each run ends within its limit plus a second");
      assertTrue(CodeSandboxAdversarialTest.noSandboxProcesses(), "nothing left running");
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void noIsolationNeedsAnExplicitYes() {
    var e = org.junit.jupiter.api.Assertions.assertThrows(RewardConfigException.class,
        () -> reward(Map.of("sandbox", "none")));
    assertTrue(e.getMessage().contains("allow_unsandboxed"), e.getMessage());
    try (CodeTestReward r = reward(Map.of("sandbox", "none", "allow_unsandboxed", true))) {
      assertEquals(Isolation.NONE, r.sandbox().isolation());
      assertEquals(1.0, run(r, "print('ok')"));
    }
  }
}
