package io.grpo4j.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.datasets.tasks.Task;
import io.grpo4j.datasets.tasks.Tasks;
import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.RewardRegistry;
import io.grpo4j.rewards.RewardSpec;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Every generated worked solution passes its task's checker; corrupted ones fail (2,000 seeds per task). */
class TasksTest {
  @ParameterizedTest
  @ValueSource(strings = {"arithmetic", "countdown", "sort"})
  void checkersAcceptWorkedSolutionsAndRejectCorruptions(String name) {
    Task t = Tasks.create(name, Map.of());
    List<Example> ex = t.generate(2000, 11);
    SplittableRandom r = new SplittableRandom(99);
    for (Example e : ex) {
      String sol = t.solution(e);
      assertTrue(sol.startsWith("<think>") && sol.contains("</think><answer>") && sol.endsWith("</answer>"), sol);
      assertEquals(1.0, t.check(e.fields(), sol), e.id() + ": " + sol);
      String answer = sol.substring(sol.indexOf("<answer>") + 8, sol.indexOf("</answer>"));
      String corrupted = corrupt(answer, r);
      if (!corrupted.equals(answer)) {
        String bad = sol.replace("<answer>" + answer + "</answer>", "<answer>" + corrupted + "</answer>");
        assertEquals(0.0, t.check(e.fields(), bad), e.id() + " accepted a corrupted answer: " + corrupted);
      }
      assertEquals(0.0, t.check(e.fields(), "<think>" + "<answer>" + answer + "</answer></think>"),
          "an answer inside <think> does not count");
    }
  }

  /** Change one digit (never a no-op). */
  static String corrupt(String s, SplittableRandom r) {
    int[] digits = java.util.stream.IntStream.range(0, s.length()).filter(i -> Character.isDigit(s.charAt(i)))
        .toArray();
    if (digits.length == 0) {
      return s + "1";
    }
    int at = digits[r.nextInt(digits.length)];
    char c = s.charAt(at);
    char d = (char) ('0' + ((c - '0' + 1 + r.nextInt(8)) % 10));
    return s.substring(0, at) + d + s.substring(at + 1);
  }

  @ParameterizedTest
  @ValueSource(strings = {"arithmetic", "countdown", "sort"})
  void sameSeedSameExamples(String name) {
    Task t = Tasks.create(name, Map.of());
    assertEquals(t.generate(50, 3), t.generate(50, 3));
    assertTrue(!t.generate(5, 3).get(0).prompt().equals(t.generate(5, 4).get(0).prompt())
        || !t.generate(5, 3).get(1).prompt().equals(t.generate(5, 4).get(1).prompt()));
  }

  @ParameterizedTest
  @ValueSource(strings = {"arithmetic", "countdown", "sort"})
  void eachTaskIsARewardPluginNamedAfterIt(String name) {
    Task t = Tasks.create(name, Map.of());
    Example e = t.generate(1, 5).get(0);
    var f = RewardRegistry.load(List.of()).create(RewardSpec.of(name, 1, Map.of()));
    assertEquals(List.of(1.0), f.score(List.of(Completion.of(t.solution(e), e.fields()))));
    assertEquals(java.util.Collections.singletonList(null),
        f.score(List.of(Completion.of("x", Map.of("unrelated", 1)))), "rows of other tasks are not applicable");
  }
}
