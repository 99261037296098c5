package io.grpo4j.rewards.builtin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.Params;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The sandbox's cost: per-program overhead over a bare interpreter start, and throughput on 256 programs. */
class CodeSandboxThroughputTest {
  @Test
  void overheadAndThroughputAreMeasured() throws Exception {
    String python = CodeTestReward.findPython();
    int n = 20;
    long t0 = System.nanoTime();
    for (int i = 0; i < n; i++) {
      Process p = new ProcessBuilder(python, "-c", "pass").start();
      assertEquals(0, p.waitFor());
    }
    double bare = (System.nanoTime() - t0) / 1e6 / n;
    try (CodeTestReward r = (CodeTestReward) new CodeTestReward.Provider().create(Params.validate("code_tests",
        new CodeTestReward.Provider().params(), Map.of("parallelism", 1)))) {
      Completion c = Completion.of("```python\npass\n```", Map.of("tests", List.of(Map.of("input", "", "output", ""))));
      r.score(List.of(c)); // warm up
      t0 = System.nanoTime();
      for (int i = 0; i < n; i++) {
        assertEquals(1.0, r.score(List.of(c)).get(0));
      }
      double sandboxed = (System.nanoTime() - t0) / 1e6 / n;
      System.out.printf("code_tests (%s): bare `python3 -c pass` %.1f ms, sandboxed program %.1f ms, overhead %.1f ms%n",
          r.sandbox().isolation(), bare, sandboxed, sandboxed - bare);
      assertTrue(sandboxed - bare < 1000, "sandbox overhead " + (sandboxed - bare) + " ms");
    }
    try (CodeTestReward r = (CodeTestReward) new CodeTestReward.Provider().create(Params.validate("code_tests",
        new CodeTestReward.Provider().params(), Map.of()))) {
      List<Completion> batch = new ArrayList<>();
      for (int i = 0; i < 256; i++) {
        batch.add(Completion.of("```python\nn = int(input())\nprint(n * " + (i % 7) + ")\n```",
            Map.of("tests", List.of(Map.of("input", i + "\n", "output", String.valueOf(i * (i % 7)))))));
      }
      t0 = System.nanoTime();
      List<Double> out = r.score(batch);
      double secs = (System.nanoTime() - t0) / 1e9;
      System.out.printf("code_tests: 256 programs in %.2f s = %.1f programs/s (default parallelism %d)%n", secs,
          256 / secs, Runtime.getRuntime().availableProcessors());
      assertTrue(out.stream().allMatch(x -> x == 1.0));
    }
  }
}
