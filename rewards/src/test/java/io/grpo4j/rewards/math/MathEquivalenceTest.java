package io.grpo4j.rewards.math;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Every (gold, prediction, expected) case of math-cases.tsv, plus the configured-degrees case. */
class MathEquivalenceTest {
  record Case(int line, String gold, String pred, boolean expected) {}

  static List<Case> cases() throws Exception {
    List<Case> out = new ArrayList<>();
    try (BufferedReader r = new BufferedReader(new InputStreamReader(
        MathEquivalenceTest.class.getResourceAsStream("/math-cases.tsv"), StandardCharsets.UTF_8))) {
      String line;
      int n = 0;
      while ((line = r.readLine()) != null) {
        n++;
        if (line.startsWith("#") || line.isBlank()) {
          continue;
        }
        String[] f = line.split("\t", -1);
        if (f.length != 3) {
          throw new IllegalStateException("math-cases.tsv line " + n + ": expected 3 tab-separated fields");
        }
        out.add(new Case(n, f[0], f[1], f[2].trim().equals("1")));
      }
    }
    return out;
  }

  @Test
  void allCasesDecideAsExpected() throws Exception {
    MathEquivalence eq = new MathEquivalence(1e-6, false);
    List<Case> cases = cases();
    assertTrue(cases.size() >= 300, "at least 300 cases, have " + cases.size());
    List<String> wrong = new ArrayList<>();
    for (Case c : cases) {
      if (eq.equivalent(c.gold(), c.pred()) != c.expected()) {
        wrong.add("line " + c.line() + ": gold [" + c.gold() + "] pred [" + c.pred() + "] expected " + c.expected());
      }
    }
    assertEquals(List.of(), wrong);
  }

  @Test
  void degreesEqualRadiansOnlyWhenConfigured() {
    assertTrue(new MathEquivalence(1e-6, true).equivalent("\\frac{\\pi}{2}", "90^\\circ"));
    assertTrue(!new MathEquivalence(1e-6, false).equivalent("\\frac{\\pi}{2}", "90^\\circ"));
  }
}
