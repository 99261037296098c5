package io.grpo4j.rewards.math;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;

/**
 * Hugging Face Math-Verify's own test suite (tests/ of github.com/huggingface/Math-Verify, MIT licence) as (gold,
 * completion, verdict) cases in math-verify-cases.jsonl, each naming the test it comes from and the extraction it
 * ran with ("latex", "expr" or both, Math-Verify's ExtractionConfigs) and its precision. math_answer runs each case
 * with the matching modes (latex = boxed + latex, expr = expr; the R1 answer tag is always on) and must agree with
 * Math-Verify's verdict on at least 90% of them and reject at least 85% of its non-matches.
 */
class MathVerifyCasesTest {
  record Case(int line, String source, String gold, String pred, boolean expected, List<String> match, int precision) {}

  static List<Case> cases() throws Exception {
    List<Case> out = new ArrayList<>();
    ObjectMapper om = new ObjectMapper();
    try (BufferedReader r = new BufferedReader(new InputStreamReader(
        MathVerifyCasesTest.class.getResourceAsStream("/math-verify-cases.jsonl"), StandardCharsets.UTF_8))) {
      String line;
      int n = 0;
      while ((line = r.readLine()) != null) {
        n++;
        JsonNode j = om.readTree(line);
        List<String> match = new ArrayList<>();
        j.get("match").forEach(m -> match.add(m.asText()));
        out.add(new Case(n, j.get("source").asText(), j.get("gold").asText(), j.get("pred").asText(),
            j.get("expected").asInt() == 1, match, j.path("precision").asInt(6)));
      }
    }
    return out;
  }

  static MathVerifier verifierFor(List<String> match, int precision) {
    List<String> modes = new ArrayList<>(List.of("answer_tag"));
    if (match.contains("latex")) {
      modes.add("boxed");
      modes.add("latex");
    }
    if (match.contains("expr")) {
      modes.add("expr");
    }
    return new MathVerifier(new AnswerExtractor(modes, null), new MathEquivalence(1e-6, false, precision));
  }

  @Test
  void agreesWithMathVerifyOnItsOwnSuite() throws Exception {
    List<Case> cases = cases();
    int agree = 0;
    int negatives = 0;
    int rejected = 0;
    List<String> wrong = new ArrayList<>();
    for (Case c : cases) {
      boolean got = verifierFor(c.match(), c.precision()).verify(c.gold(), c.pred());
      if (got == c.expected()) {
        agree++;
      } else {
        wrong.add(String.format(Locale.ROOT, "line %d %s: expected %s, gold [%s] pred [%s]", c.line(), c.source(),
            c.expected() ? 1 : 0, abbrev(c.gold()), abbrev(c.pred())));
      }
      if (!c.expected()) {
        negatives++;
        rejected += got ? 0 : 1;
      }
    }
    double agreement = agree / (double) cases.size();
    double rejection = rejected / (double) negatives;
    System.out.printf(Locale.ROOT, "Math-Verify suite: %d of %d agree (%.1f%%); %d of %d non-matches rejected"
        + " (%.1f%%)%n", agree, cases.size(), 100 * agreement, rejected, negatives, 100 * rejection);
    wrong.forEach(System.out::println);
    assertTrue(agreement >= 0.90, "agreement " + agreement);
    assertTrue(rejection >= 0.85, "non-matches rejected " + rejection);
  }

  static String abbrev(String s) {
    String t = s.replace("\n", "\\n");
    return t.length() > 120 ? t.substring(0, 60) + " ... " + t.substring(t.length() - 55) : t;
  }
}
