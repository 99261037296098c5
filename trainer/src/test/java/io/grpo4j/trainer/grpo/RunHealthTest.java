package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Each run-health check provoked on its own, with its message, its metrics and its doubling reminder interval. */
class RunHealthTest {
  static final List<String> TEXTS = List.of("<think>7+5=12</think><answer>12</answer>", "<think>hm</think>",
      "12", "twelve");

  /** A step of 2 groups of 4: rewards per completion for "accuracy" and "format". */
  static RunHealth.Step step(long n, double[] accuracy, double[] format, double truncated, Double entropy, Double kl,
      boolean skipped) {
    Double[][] values = new Double[2][8];
    double[] totals = new double[8];
    for (int i = 0; i < 8; i++) {
      values[0][i] = accuracy[i];
      values[1][i] = format[i];
      totals[i] = accuracy[i] + 0.2 * format[i];
    }
    List<String> texts = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      texts.add(TEXTS.get(i % TEXTS.size()));
    }
    return new RunHealth.Step(n, List.of("accuracy", "format"), values, totals, 4, texts, truncated, entropy, kl,
        skipped, 48);
  }

  static double[] fill(double v) {
    double[] a = new double[8];
    Arrays.fill(a, v);
    return a;
  }

  static final double[] MIXED = {1, 0, 1, 0, 0, 1, 1, 0};

  List<RunHealth.Warning> run(int steps, java.util.function.LongFunction<RunHealth.Step> gen,
      List<Map<String, Object>> metrics) {
    List<RunHealth.Warning> w = new ArrayList<>();
    RunHealth h = new RunHealth(new RunHealth.Settings(true, 5, 0.01, 1.0), w::add);
    for (long s = 1; s <= steps; s++) {
      metrics.add(h.observe(gen.apply(s)));
    }
    return w;
  }

  @Test
  void everyGroupWithoutSpreadSaysAllZeroNamesTheRewardsAndShowsTwoCompletions() {
    List<Map<String, Object>> m = new ArrayList<>();
    List<RunHealth.Warning> w = run(40, s -> step(s, fill(0), fill(0), 0, 0.5, 0.01, false), m);
    List<RunHealth.Warning> spread = w.stream().filter(x -> x.check().equals("zero_spread")).toList();
    // once the condition has held for 5 steps (patience), then after 5, 10, 20 more: a doubling interval
    assertEquals(List.of(5L, 10L, 20L, 40L), spread.stream().map(RunHealth.Warning::step).toList());
    String msg = spread.get(0).message();
    assertTrue(msg.contains("every completion scored 0") && msg.contains("accuracy mean 0")
        && msg.contains("format mean 0") && msg.contains("Two completions: \"" + TEXTS.get(0)), msg);
    assertEquals(40, m.get(39).get("health/zero_spread_steps"));
  }

  @Test
  void allEqualNonZeroRewardsAreToldApartFromAllZero() {
    List<RunHealth.Warning> w = run(6, s -> step(s, fill(1), fill(1), 0, 0.5, 0.01, false), new ArrayList<>());
    String msg = w.stream().filter(x -> x.check().equals("zero_spread")).findFirst().orElseThrow().message();
    assertTrue(msg.contains("every completion scored the same 1.2") && msg.contains("teach nothing"), msg);
  }

  @Test
  void aRewardThatNeverFiresIsNamedWithWhatItGave() {
    List<Map<String, Object>> m = new ArrayList<>();
    // accuracy varies (fires), format is 0 everywhere: only format is silent, and groups do have spread
    List<RunHealth.Warning> w = run(12, s -> step(s, MIXED, fill(0), 0, 0.5, 0.01, false), m);
    assertEquals(List.of(5L, 10L), w.stream().map(RunHealth.Warning::step).toList(), w.toString());
    assertEquals("reward_never_fires", w.get(0).check());
    assertEquals(5, w.get(0).step());
    assertTrue(w.get(0).message().contains("reward 'format' gave 0 to every one of the 40 completions of the first"
        + " 5 steps") && w.get(0).message().contains("special tokens"), w.get(0).message());
    assertEquals(1, m.get(11).get("health/silent_rewards"));
    // once it fires, it is no longer silent
    List<RunHealth.Warning> fired = run(12, s -> step(s, MIXED, s == 3 ? MIXED : fill(0), 0, 0.5, 0.01, false),
        new ArrayList<>());
    assertTrue(fired.isEmpty(), fired.toString());
  }

  @Test
  void allCompletionsTruncated() {
    List<RunHealth.Warning> w = run(6, s -> step(s, MIXED, MIXED, 1.0, 0.5, 0.01, false), new ArrayList<>());
    assertEquals(List.of("all_truncated"), w.stream().map(RunHealth.Warning::check).toList());
    assertTrue(w.get(0).message().contains("max_completion_length (48 tokens)"), w.get(0).message());
    // 7 of 8 truncated is not all
    assertTrue(run(8, s -> step(s, MIXED, MIXED, 0.875, 0.5, 0.01, false), new ArrayList<>()).isEmpty());
  }

  @Test
  void entropyCollapse() {
    List<Map<String, Object>> m = new ArrayList<>();
    List<RunHealth.Warning> w = run(12, s -> step(s, MIXED, MIXED, 0, s <= 3 ? 0.8 : 0.002, 0.01, false), m);
    assertEquals(List.of("entropy_collapse"), w.stream().map(RunHealth.Warning::check).toList());
    assertEquals(8, w.get(0).step()); // below the floor from step 4: five steps later
    assertTrue(w.get(0).message().contains("0.8 at the start"), w.get(0).message());
    assertEquals(0.002 / 0.8, (Double) m.get(11).get("health/entropy_ratio"), 1e-12);
  }

  @Test
  void klGrowingWithoutBound() {
    List<RunHealth.Warning> w = run(12, s -> step(s, MIXED, MIXED, 0, 0.5, 0.2 * Math.pow(1.5, s), false),
        new ArrayList<>());
    assertTrue(w.stream().anyMatch(x -> x.check().equals("kl_runaway")), w.toString());
    // high but steady KL is not a runaway
    assertTrue(run(12, s -> step(s, MIXED, MIXED, 0, 0.5, 3.0 + (s % 2) * 0.1, false), new ArrayList<>()).isEmpty());
  }

  @Test
  void repeatedNonFiniteSkips() {
    List<Map<String, Object>> m = new ArrayList<>();
    List<RunHealth.Warning> w = run(6, s -> step(s, MIXED, MIXED, 0, 0.5, 0.01, s == 2 || s == 4), m);
    assertEquals(List.of("nonfinite_updates"), w.stream().map(RunHealth.Warning::check).toList());
    assertEquals(4, w.get(0).step());
    assertTrue(w.get(0).message().contains("2 of the last 4 steps"), w.get(0).message());
    assertEquals(2L, m.get(5).get("health/nonfinite_skips"));
  }

  @Test
  void aHealthyRunSaysNothing() {
    List<RunHealth.Warning> w = run(50, s -> step(s, MIXED, MIXED, 0.1, 0.5, 0.01 + s * 1e-4, false),
        new ArrayList<>());
    assertTrue(w.isEmpty(), w.toString());
  }
}
