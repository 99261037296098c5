package io.grpo4j.rewards.math;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Decides whether a predicted answer equals a gold answer: after normalisation, as multiple-choice letters,
 * matrices, tuples/sets/intervals (element by element), numbers (relative tolerance), expressions (numerically
 * at random points), or text.
 */
public final class MathEquivalence {
  private static final Pattern CHOICE = Pattern.compile("^\\(?([A-Ea-e])\\)?$");
  private static final Pattern PRED_CHOICE = Pattern.compile("^(?:\\(?([A-E])\\)?[.:)]?)(?:\\s.*)?$", Pattern.DOTALL);
  private static final Pattern MATRIX = Pattern.compile(
      "^\\\\begin\\{[pbvBV]?matrix\\}(.*)\\\\end\\{[pbvBV]?matrix\\}$", Pattern.DOTALL);

  private final double relTol;
  private final boolean degreesAsRadians;
  private final int floatDigits; // Math-Verify's float_rounding; -1 = relative tolerance only

  public MathEquivalence(double relTol, boolean degreesAsRadians) {
    this(relTol, degreesAsRadians, 6);
  }

  /** @param floatDigits numbers written with a decimal point match when equal after rounding to this many decimals */
  public MathEquivalence(double relTol, boolean degreesAsRadians, int floatDigits) {
    this.relTol = relTol;
    this.degreesAsRadians = degreesAsRadians;
    this.floatDigits = floatDigits;
  }

  /** An answer read once: its text, normalised text and structure (so a verdict does not parse twice). */
  public record Answer(String raw, String normalized, MathValue value) {}

  public Answer read(String raw) {
    String t = raw == null ? "" : raw.trim();
    String n = MathNormalizer.normalize(t, degreesAsRadians);
    return new Answer(t, n, MathValue.parse(n));
  }

  /** Whether an answer reads as math (not just text, not a true-or-false statement like 1/2 = 10/9). */
  public boolean parses(Answer a) {
    MathValue v = a.value();
    return !(v instanceof MathValue.Text) && !(v instanceof MathValue.Scalar s && s.expr() == null)
        && !(v instanceof MathValue.Relation r && r.isNumeric());
  }

  /** Whether a whole answer string is one expression (no list, no markup needing extraction). */
  public boolean isExpression(String answer) {
    if (answer.contains("$") || answer.contains("\\(") || answer.contains("\\[") || answer.contains("\\boxed")
        || answer.contains("####")) {
      return false;
    }
    return read(answer).value() instanceof MathValue.Scalar s && s.expr() != null;
  }

  public boolean equivalent(String gold, String pred) {
    if (gold == null || pred == null) {
      return false;
    }
    return equivalent(read(gold), read(pred));
  }

  public boolean equivalent(Answer gold, Answer pred) {
    Matcher gc = CHOICE.matcher(degreesAsRadians ? MathNormalizer.normalize(gold.raw(), false) : gold.normalized());
    if (gc.matches()) {
      String p0 = pred.raw();
      for (String cand : new String[] {MathNormalizer.stripDelimiters(p0), MathNormalizer.normalize(p0, false)}) {
        Matcher pc = PRED_CHOICE.matcher(cand.toUpperCase(Locale.ROOT));
        if (pc.matches()) {
          return pc.group(1).equalsIgnoreCase(gc.group(1));
        }
      }
      return false;
    }
    String g = gold.normalized();
    String p = pred.normalized();
    if (g.equals(p)) {
      return true;
    }
    return same(gold.value(), pred.value()) || textEqual(g, p);
  }

  /**
   * Structural equality in the spirit of Math-Verify's grader: an assignment ({@code x = 5}) against a plain value
   * compares its right side; sets compare as multisets, tuples in order; an open interval equals a pair; relations
   * compare side by side or flipped ({@code x \le 5} is {@code 5 \ge x}); matrices cell by cell.
   */
  boolean same(MathValue g, MathValue p) {
    if (g instanceof MathValue.Relation r && r.isAssignment() && !(p instanceof MathValue.Relation)) {
      return same(r.sides().get(1), p);
    }
    if (p instanceof MathValue.Relation r && r.isAssignment() && !(g instanceof MathValue.Relation)) {
      return same(g, r.sides().get(1));
    }
    if (g instanceof MathValue.SetOf s && s.items().size() == 1 && !(p instanceof MathValue.SetOf)) {
      return same(s.items().get(0), p);
    }
    if (p instanceof MathValue.SetOf s && s.items().size() == 1 && !(g instanceof MathValue.SetOf)) {
      return same(g, s.items().get(0));
    }
    if (g instanceof MathValue.Scalar a && p instanceof MathValue.Scalar b) {
      return sameScalar(a, b);
    }
    if (g instanceof MathValue.SetOf a && p instanceof MathValue.SetOf b) {
      return sameUnordered(a.items(), b.items());
    }
    if (g instanceof MathValue.SetOf a && p instanceof MathValue.Tuple b && b.open() == '{') {
      return sameUnordered(a.items(), b.items());
    }
    if (g instanceof MathValue.Tuple a && p instanceof MathValue.Tuple b) {
      return a.open() == b.open() && a.close() == b.close() && sameOrdered(a.items(), b.items());
    }
    if (g instanceof MathValue.Tuple a && p instanceof MathValue.SetOf b) {
      return sameOrdered(a.items(), b.items()); // a pair written as a list, in the same order
    }
    if (g instanceof MathValue.SetOf a && p instanceof MathValue.Tuple b) {
      return sameOrdered(a.items(), b.items()) || sameUnordered(a.items(), b.items());
    }
    if (g instanceof MathValue.Relation r && (p instanceof MathValue.Interval || p instanceof MathValue.Tuple)) {
      return sameRange(r, p);
    }
    if (p instanceof MathValue.Relation r && (g instanceof MathValue.Interval || g instanceof MathValue.Tuple)) {
      return sameRange(r, g);
    }
    if (g instanceof MathValue.Interval a && p instanceof MathValue.Interval b) {
      return a.loOpen() == b.loOpen() && a.hiOpen() == b.hiOpen() && same(a.lo(), b.lo()) && same(a.hi(), b.hi());
    }
    if (g instanceof MathValue.Interval a && p instanceof MathValue.Tuple b) {
      return a.loOpen() && a.hiOpen() && b.items().size() == 2 && same(a.lo(), b.items().get(0))
          && same(a.hi(), b.items().get(1));
    }
    if (g instanceof MathValue.Tuple a && p instanceof MathValue.Interval b) {
      return same(b, a);
    }
    if (g instanceof MathValue.Union a && p instanceof MathValue.Union b) {
      return sameUnordered(a.parts(), b.parts());
    }
    if (g instanceof MathValue.Relation a && p instanceof MathValue.Relation b) {
      return sameRelation(a, b);
    }
    if (g instanceof MathValue.Matrix a && p instanceof MathValue.Matrix b) {
      if (a.rows().size() != b.rows().size()) {
        return false;
      }
      for (int i = 0; i < a.rows().size(); i++) {
        if (!sameOrdered(a.rows().get(i), b.rows().get(i))) {
          return false;
        }
      }
      return true;
    }
    if (g instanceof MathValue.Text a && p instanceof MathValue.Text b) {
      return textEqual(a.text(), b.text());
    }
    return false;
  }

  private boolean sameOrdered(List<MathValue> a, List<MathValue> b) {
    if (a.size() != b.size()) {
      return false;
    }
    for (int i = 0; i < a.size(); i++) {
      if (!same(a.get(i), b.get(i))) {
        return false;
      }
    }
    return true;
  }

  private boolean sameUnordered(List<MathValue> a, List<MathValue> b) {
    if (a.size() != b.size()) {
      return false;
    }
    boolean[] used = new boolean[b.size()];
    for (MathValue x : a) {
      boolean found = false;
      for (int j = 0; j < b.size(); j++) {
        if (!used[j] && same(x, b.get(j))) {
          used[j] = found = true;
          break;
        }
      }
      if (!found) {
        return false;
      }
    }
    return true;
  }

  /** Same operators with sides equal, or the chain read backwards with flipped operators. */
  private boolean sameRelation(MathValue.Relation a, MathValue.Relation b) {
    if (a.ops().size() != b.ops().size()) {
      return false;
    }
    if (a.ops().equals(b.ops()) && sameOrdered(a.sides(), b.sides())) {
      return true;
    }
    if (a.ops().size() == 1 && a.ops().equals(b.ops()) && sameDifference(a, b, false)) {
      return true;
    }
    if (a.ops().size() == 1 && a.ops().get(0).equals("=") && b.ops().equals(a.ops()) && proportional(a, b)) {
      return true; // 2x + 4y - 3 = 0 and y = -x/2 + 3/4: the same curve
    }
    List<String> flipped = new ArrayList<>();
    for (int i = b.ops().size() - 1; i >= 0; i--) {
      flipped.add(FLIP.getOrDefault(b.ops().get(i), b.ops().get(i)));
    }
    if (a.ops().equals(flipped)) {
      List<MathValue> reversed = new ArrayList<>(b.sides());
      java.util.Collections.reverse(reversed);
      return sameOrdered(a.sides(), reversed) || a.ops().size() == 1 && sameDifference(a, b, true);
    }
    return false;
  }

  /** {@code a < x \\le b} against the interval (a, b]: the same set of x. */
  private boolean sameRange(MathValue.Relation r, MathValue range) {
    if (r.ops().size() != 2 || !r.ops().stream().allMatch(o -> o.equals("<") || o.equals("≤"))) {
      return false;
    }
    MathValue lo;
    MathValue hi;
    boolean loOpen;
    boolean hiOpen;
    if (range instanceof MathValue.Interval i) {
      lo = i.lo();
      hi = i.hi();
      loOpen = i.loOpen();
      hiOpen = i.hiOpen();
    } else if (range instanceof MathValue.Tuple t && t.items().size() == 2 && t.open() == '(' && t.close() == ')') {
      lo = t.items().get(0);
      hi = t.items().get(1);
      loOpen = hiOpen = true;
    } else {
      return false;
    }
    return loOpen == r.ops().get(0).equals("<") && hiOpen == r.ops().get(1).equals("<")
        && same(r.sides().get(0), lo) && same(r.sides().get(2), hi);
  }

  private static final Map<String, String> FLIP = Map.of("<", ">", ">", "<", "≤", "≥", "≥", "≤", "=", "=", "≠", "≠");

  /** lhs - rhs of both relations are the same expression (negated for a flipped one): x - 5 = 0 vs x = 5. */
  private boolean sameDifference(MathValue.Relation a, MathValue.Relation b, boolean flipped) {
    if (!(a.sides().get(0) instanceof MathValue.Scalar al) || !(a.sides().get(1) instanceof MathValue.Scalar ar)
        || !(b.sides().get(0) instanceof MathValue.Scalar bl) || !(b.sides().get(1) instanceof MathValue.Scalar br)) {
      return false;
    }
    String da = "(" + al.text() + ")-(" + ar.text() + ")";
    String db = flipped ? "(" + br.text() + ")-(" + bl.text() + ")" : "(" + bl.text() + ")-(" + br.text() + ")";
    return sameScalar(new MathValue.Scalar(da, MathExpr.tryParse(da)), new MathValue.Scalar(db, MathExpr.tryParse(db)));
  }

  /** (lhs - rhs) of one equation is a constant non-zero multiple of the other's, at random points. */
  private boolean proportional(MathValue.Relation a, MathValue.Relation b) {
    MathExpr da = difference(a);
    MathExpr db = difference(b);
    if (da == null || db == null || da.variables().isEmpty()) {
      return false;
    }
    Map<String, Integer> vars = new HashMap<>(da.variables());
    db.variables().keySet().forEach(k -> vars.putIfAbsent(k, vars.size()));
    SplittableRandom rnd = new SplittableRandom(777);
    Double ratio = null;
    for (int trial = 0; trial < 8; trial++) {
      Map<String, Double> point = new HashMap<>();
      for (String v : vars.keySet()) {
        point.put(v, 0.5 + rnd.nextDouble() * 2.5);
      }
      double x = da.eval(point);
      double y = db.eval(point);
      if (!Double.isFinite(x) || !Double.isFinite(y) || Math.abs(y) < 1e-12) {
        return false;
      }
      if (ratio == null) {
        ratio = x / y;
      } else if (!close(ratio, x / y)) {
        return false;
      }
    }
    return ratio != null && Math.abs(ratio) > 1e-12;
  }

  private static MathExpr difference(MathValue.Relation r) {
    if (!(r.sides().get(0) instanceof MathValue.Scalar l) || !(r.sides().get(1) instanceof MathValue.Scalar rr)) {
      return null;
    }
    return MathExpr.tryParse("(" + l.text() + ")-(" + rr.text() + ")");
  }

  boolean sameScalar(MathValue.Scalar a, MathValue.Scalar b) {
    if (a.text().equals(b.text()) || textEqual(a.text(), b.text())) {
      return true;
    }
    MathExpr ea = a.expr();
    MathExpr eb = b.expr();
    if (ea == null || eb == null) {
      return false;
    }
    Map<String, Integer> vars = new HashMap<>(ea.variables());
    eb.variables().keySet().forEach(k -> vars.putIfAbsent(k, vars.size()));
    if (vars.isEmpty()) {
      double x = ea.eval(Map.of());
      double y = eb.eval(Map.of());
      if (floatDigits >= 0 && (a.isFloat() || b.isFloat()) && Double.isFinite(x) && Double.isFinite(y)) {
        // Math-Verify: when a float is involved, both sides rounded to float_rounding decimals
        return round(x) == round(y) || close(x, y);
      }
      return close(x, y);
    }
    if (!ea.variables().keySet().equals(eb.variables().keySet())) {
      return false;
    }
    // polynomial identity testing: equal at several random points means equal (with overwhelming probability)
    SplittableRandom rnd = new SplittableRandom(12345);
    int agreed = 0;
    for (int trial = 0; trial < 8; trial++) {
      Map<String, Double> point = new HashMap<>();
      for (String v : vars.keySet()) {
        point.put(v, 0.5 + rnd.nextDouble() * 2.5);
      }
      double x = ea.eval(point);
      double y = eb.eval(point);
      if (Double.isNaN(x) && Double.isNaN(y)) {
        continue;
      }
      if (!close(x, y)) {
        return false;
      }
      agreed++;
    }
    return agreed >= 3;
  }

  private double round(double x) {
    return new java.math.BigDecimal(x).setScale(floatDigits, java.math.RoundingMode.HALF_EVEN).doubleValue();
  }

  boolean sameScalar(String a, String b) {
    String x = MathNormalizer.normalize(a, degreesAsRadians);
    String y = MathNormalizer.normalize(b, degreesAsRadians);
    return sameScalar(new MathValue.Scalar(x, MathExpr.tryParse(x)), new MathValue.Scalar(y, MathExpr.tryParse(y)));
  }

  private boolean close(double x, double y) {
    if (Double.isNaN(x) || Double.isNaN(y)) {
      return false;
    }
    if (Double.isInfinite(x) || Double.isInfinite(y)) {
      return x == y;
    }
    double scale = Math.max(Math.abs(x), Math.abs(y));
    return Math.abs(x - y) <= Math.max(relTol * scale, 1e-12);
  }

  private static boolean textEqual(String a, String b) {
    return canonicalText(a).equals(canonicalText(b));
  }

  private static final Pattern TEXT_NOISE = Pattern.compile("[\\s{}\\\\]");
  private static final Pattern ARTICLE = Pattern.compile("^(the|an?)\\s+");

  static String canonicalText(String s) {
    return TEXT_NOISE.matcher(ARTICLE.matcher(s.toLowerCase(Locale.ROOT).trim()).replaceFirst("")).replaceAll("");
  }
}
