package io.grpo4j.rewards.math;

import java.util.ArrayList;
import java.util.List;

/**
 * Gold answer vs completion, end to end: both sides' answers are extracted ({@link AnswerExtractor}), the first
 * candidate of each that parses is the answer (a gold without any math markup is taken whole), and the two are
 * compared by {@link MathEquivalence}. As in Math-Verify, answers that parse as nothing still match by their text.
 */
public final class MathVerifier {
  private final AnswerExtractor completions;
  private final AnswerExtractor golds;
  private final MathEquivalence equivalence;

  public MathVerifier(AnswerExtractor completions, MathEquivalence equivalence) {
    this.completions = completions;
    List<String> goldModes = new ArrayList<>();
    for (String m : List.of("boxed", "latex", "expr", "gsm8k")) {
      goldModes.add(m);
    }
    this.golds = new AnswerExtractor(goldModes, null);
    this.equivalence = equivalence;
  }

  public boolean verify(String gold, String completion) {
    if (gold == null || completion == null) {
      return false;
    }
    MathEquivalence.Answer[] first = new MathEquivalence.Answer[1];
    MathEquivalence.Answer[] parsed = new MathEquivalence.Answer[1];
    completions.find(completion, c -> {
      MathEquivalence.Answer a = equivalence.read(c.text());
      if (first[0] == null) {
        first[0] = a;
      }
      if (equivalence.parses(a)) {
        parsed[0] = a;
        return true;
      }
      return false;
    });
    if (first[0] == null) {
      return false;
    }
    GoldAnswer g = gold(gold);
    MathEquivalence.Answer p = parsed[0] != null ? parsed[0] : first[0];
    return equivalence.equivalent(g.answer(), p) || g.first() != null && equivalence.equivalent(g.first(), first[0]);
  }

  /** The gold's answer, and (when that was not its first candidate) the first one, compared as Math-Verify does. */
  private record GoldAnswer(MathEquivalence.Answer answer, MathEquivalence.Answer first) {}

  // the G completions of a prompt share its gold: read it once
  private final java.util.Map<String, GoldAnswer> goldCache = java.util.Collections.synchronizedMap(
      new java.util.LinkedHashMap<>(256, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(java.util.Map.Entry<String, GoldAnswer> e) {
          return size() > 4096;
        }
      });

  private GoldAnswer gold(String gold) {
    GoldAnswer g = goldCache.get(gold);
    if (g == null) {
      List<AnswerExtractor.Candidate> gc = goldCandidates(gold);
      MathEquivalence.Answer a = firstParsed(gc);
      g = new GoldAnswer(a, a.raw().equals(gc.get(0).text()) ? null : equivalence.read(gc.get(0).text()));
      goldCache.put(gold, g);
    }
    return g;
  }

  /**
   * A gold answer's candidates: boxed and $...$ answers first; then the whole text when it is one expression
   * ("2\\sqrt{3}", a dataset's bare answer, is that, not the number 2 at its start); then numbers; then the text.
   */
  private List<AnswerExtractor.Candidate> goldCandidates(String gold) {
    List<AnswerExtractor.Candidate> found = golds.candidates(gold);
    List<AnswerExtractor.Candidate> out = new ArrayList<>();
    found.stream().filter(c -> c.kind() == AnswerExtractor.Kind.LATEX).forEach(out::add);
    AnswerExtractor.Candidate whole = new AnswerExtractor.Candidate(gold.trim(), AnswerExtractor.Kind.TEXT, false);
    if (equivalence.isExpression(gold)) {
      out.add(whole);
    }
    found.stream().filter(c -> c.kind() != AnswerExtractor.Kind.LATEX).forEach(out::add);
    out.add(whole);
    return out;
  }

  /** The first candidate that reads as math (else the first one, compared as text). */
  private MathEquivalence.Answer firstParsed(List<AnswerExtractor.Candidate> cs) {
    MathEquivalence.Answer first = null;
    for (AnswerExtractor.Candidate c : cs) {
      MathEquivalence.Answer a = equivalence.read(c.text());
      if (first == null) {
        first = a;
      }
      if (equivalence.parses(a)) {
        return a;
      }
    }
    return first;
  }
}
