package io.grpo4j.rewards;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.rewards.builtin.ExternalProcessReward;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Faulty plugins never take the batch down: fallbacks and error counts instead. */
class RewardSetTest {
  @TempDir Path tmp;

  static RewardFunction fn(String name, java.util.function.Function<List<Completion>, List<Double>> f) {
    return new RewardFunction() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public List<Double> score(List<Completion> completions) {
        return f.apply(completions);
      }
    };
  }

  static List<Completion> batch(int n) {
    List<Completion> b = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      b.add(Completion.of("c" + i, Map.of("answer", String.valueOf(i))));
    }
    return b;
  }

  @Test
  void throwingAndHangingPluginsGetFallbacksAndErrorCounts() {
    RewardFunction good = fn("good", b -> b.stream().map(c -> 1.0).toList());
    RewardFunction thrower = fn("thrower", b -> {
      throw new IllegalStateException("boom");
    });
    RewardFunction hanger = fn("hanger", b -> {
      try {
        Thread.sleep(60_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return List.of();
    });
    RewardFunction shortList = fn("short", b -> List.of(1.0));
    RewardFunction nan = fn("nan", b -> b.stream().map(c -> Double.NaN).toList());
    try (RewardSet set = new RewardSet(List.of(
        new RewardSet.Entry("good", 1, good, 0),
        new RewardSet.Entry("thrower", 1, thrower, 0),
        new RewardSet.Entry("hanger", 1, hanger, 0.5),
        new RewardSet.Entry("short", 1, shortList, 0),
        new RewardSet.Entry("nan", 1, nan, 0)), -0.5, false, 5, 4)) {
      long t0 = System.nanoTime();
      RewardSet.Result r = set.score(batch(3));
      assertTrue((System.nanoTime() - t0) / 1e9 < 2.0, "the hanging plugin is abandoned at its budget");
      assertEquals(List.of("good", "thrower", "hanger", "short", "nan"), r.names());
      assertEquals(0, r.errors()[0]);
      for (int k = 1; k < 5; k++) {
        assertEquals(3, r.errors()[k], r.names().get(k));
        assertEquals(-0.5, r.values()[k][0]);
      }
      assertEquals(1 - 0.5 * 4, r.total()[2], 1e-12);
      assertTrue(r.errorMessages().stream().anyMatch(m -> m.contains("boom")));
      assertTrue(r.errorMessages().stream().anyMatch(m -> m.contains("time budget")));
      // the pool was replaced: the next batch still scores promptly
      RewardSet.Result again = set.score(batch(2));
      assertEquals(1.0, again.values()[0][1]);
    }
  }

  @Test
  void failFastStopsOnTheFirstError() {
    RewardFunction thrower = fn("thrower", b -> {
      throw new IllegalStateException("boom");
    });
    try (RewardSet set = new RewardSet(List.of(new RewardSet.Entry("thrower", 1, thrower, 0)), 0, true, 5, 1)) {
      var e = assertThrows(RewardException.class, () -> set.score(batch(1)));
      assertTrue(e.getMessage().contains("thrower") && e.getMessage().contains("boom"));
    }
  }

  @Test
  void notApplicableContributesNothing() {
    RewardFunction some = fn("some", b -> {
      List<Double> out = new ArrayList<>();
      for (int i = 0; i < b.size(); i++) {
        out.add(i == 0 ? null : 2.0);
      }
      return out;
    });
    try (RewardSet set = new RewardSet(List.of(new RewardSet.Entry("some", 0.5, some, 0)), 0, false, 5, 1)) {
      RewardSet.Result r = set.score(batch(2));
      assertNull(r.values()[0][0]);
      assertEquals(0.0, r.total()[0]);
      assertEquals(1.0, r.total()[1]);
      assertEquals(0, r.errors()[0]);
    }
  }

  @Test
  void externalProcessScoresRestartsAfterCrashAndRejectsGarbage() throws Exception {
    Path script = tmp.resolve("reward.py");
    // answers each line; crashes (exit 3) when a completion says "crash", prints garbage on "garbage"
    Files.writeString(script, String.join("\n",
        "import sys, json",
        "for line in sys.stdin:",
        "    d = json.loads(line)",
        "    if d['completion'] == 'crash':",
        "        sys.exit(3)",
        "    if d['completion'] == 'garbage':",
        "        print('hello there', flush=True)",
        "        continue",
        "    r = 1.0 if d['completion'] == d['fields'].get('answer') else 0.0",
        "    print(json.dumps({'id': d['id'], 'reward': r}), flush=True)",
        ""));
    ExternalProcessReward ext = new ExternalProcessReward(List.of("python3", script.toString()), null, 10);
    try (RewardSet set = new RewardSet(List.of(new RewardSet.Entry("ext", 1, ext, 0)), 0, false, 20, 1)) {
      RewardSet.Result ok = set.score(List.of(Completion.of("7", Map.of("answer", "7")),
          Completion.of("8", Map.of("answer", "7"))));
      assertEquals(1.0, ok.values()[0][0]);
      assertEquals(0.0, ok.values()[0][1]);
      // dies mid-batch: the first completion was answered, the other two fall back with errors
      RewardSet.Result crash = set.score(List.of(Completion.of("7", Map.of("answer", "7")),
          Completion.of("crash", Map.of()), Completion.of("7", Map.of("answer", "7"))));
      assertEquals(1.0, crash.values()[0][0]);
      assertEquals(2, crash.errors()[0]);
      // restarted for the next batch
      RewardSet.Result after = set.score(List.of(Completion.of("5", Map.of("answer", "5"))));
      assertEquals(1.0, after.values()[0][0]);
      assertEquals(1, ext.restarts());
      // not the protocol: one clear error, fallbacks, no crash
      RewardSet.Result garbage = set.score(List.of(Completion.of("garbage", Map.of())));
      assertEquals(1, garbage.errors()[0]);
      assertTrue(garbage.errorMessages().get(0).contains("not the protocol")
          && garbage.errorMessages().get(0).contains("hello there"), garbage.errorMessages().toString());
    }
  }
}
