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

  public MathEquivalence(double relTol, boolean degreesAsRadians) {
    this.relTol = relTol;
    this.degreesAsRadians = degreesAsRadians;
  }

  public boolean equivalent(String gold, String pred) {
    if (gold == null || pred == null) {
      return false;
    }
    String g0 = gold.trim();
    String p0 = pred.trim();
    Matcher gc = CHOICE.matcher(MathNormalizer.normalize(g0, false));
    if (gc.matches()) {
      for (String cand : new String[] {MathNormalizer.stripDelimiters(p0), MathNormalizer.normalize(p0, false)}) {
        Matcher pc = PRED_CHOICE.matcher(cand.toUpperCase(Locale.ROOT));
        if (pc.matches()) {
          return pc.group(1).equalsIgnoreCase(gc.group(1));
        }
      }
      return false;
    }
    String g = MathNormalizer.normalize(g0, degreesAsRadians);
    String p = MathNormalizer.normalize(p0, degreesAsRadians);
    if (g.equals(p)) {
      return true;
    }
    Matcher gm = MATRIX.matcher(g);
    Matcher pm = MATRIX.matcher(p);
    if (gm.matches() || pm.matches()) {
      return gm.matches() && pm.matches() && sameMatrix(gm.group(1), pm.group(1));
    }
    List<String> ge = splitTopLevel(g);
    List<String> pe = splitTopLevel(p);
    if (ge.size() > 1 || pe.size() > 1 || isBracketed(g) || isBracketed(p)) {
      return sameCollection(g, p);
    }
    return sameScalar(g, p);
  }

  private boolean sameMatrix(String a, String b) {
    String[] ra = a.split("\\\\\\\\");
    String[] rb = b.split("\\\\\\\\");
    List<String> ca = new ArrayList<>();
    List<String> cb = new ArrayList<>();
    for (String r : ra) {
      if (!r.isBlank()) {
        for (String c : r.split("&")) {
          ca.add(c.trim());
        }
      }
    }
    for (String r : rb) {
      if (!r.isBlank()) {
        for (String c : r.split("&")) {
          cb.add(c.trim());
        }
      }
    }
    if (ca.size() != cb.size() || ra.length != rb.length) {
      return false;
    }
    for (int i = 0; i < ca.size(); i++) {
      if (!sameScalar(ca.get(i), cb.get(i))) {
        return false;
      }
    }
    return true;
  }

  private static boolean isBracketed(String s) {
    return s.length() >= 2 && "([{".indexOf(s.charAt(0)) >= 0 && ")]}".indexOf(s.charAt(s.length() - 1)) >= 0
        && s.contains(",");
  }

  /** Tuples and intervals compare in order with their brackets; sets and bare lists ignore order. */
  private boolean sameCollection(String g, String p) {
    char go = g.isEmpty() ? ' ' : g.charAt(0);
    char gcl = g.isEmpty() ? ' ' : g.charAt(g.length() - 1);
    char po = p.isEmpty() ? ' ' : p.charAt(0);
    char pcl = p.isEmpty() ? ' ' : p.charAt(p.length() - 1);
    boolean gb = isBracketed(g);
    boolean pb = isBracketed(p);
    String gi = gb ? g.substring(1, g.length() - 1) : g;
    String pi = pb ? p.substring(1, p.length() - 1) : p;
    List<String> ge = splitTopLevel(gi);
    List<String> pe = splitTopLevel(pi);
    if (ge.size() != pe.size()) {
      return false;
    }
    boolean set = (gb && go == '{') || !gb;
    if (gb && !set) {
      // tuple or interval: brackets must agree, elements in order
      if (!pb || go != po || gcl != pcl) {
        return false;
      }
      for (int i = 0; i < ge.size(); i++) {
        if (!sameScalar(ge.get(i), pe.get(i))) {
          return false;
        }
      }
      return true;
    }
    if (pb && po != '{' && gb) {
      return false;
    }
    boolean[] used = new boolean[pe.size()];
    for (String a : ge) {
      boolean found = false;
      for (int j = 0; j < pe.size(); j++) {
        if (!used[j] && sameScalar(a, pe.get(j))) {
          used[j] = true;
          found = true;
          break;
        }
      }
      if (!found) {
        return false;
      }
    }
    return true;
  }

  static List<String> splitTopLevel(String s) {
    List<String> out = new ArrayList<>();
    int depth = 0;
    int start = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if ("([{".indexOf(c) >= 0) {
        depth++;
      } else if (")]}".indexOf(c) >= 0) {
        depth--;
      } else if (c == ',' && depth == 0) {
        out.add(s.substring(start, i).trim());
        start = i + 1;
      }
    }
    out.add(s.substring(start).trim());
    return out;
  }

  boolean sameScalar(String a, String b) {
    a = MathNormalizer.normalize(a, degreesAsRadians);
    b = MathNormalizer.normalize(b, degreesAsRadians);
    if (a.equals(b) || textEqual(a, b)) {
      return true;
    }
    MathExpr ea = MathExpr.tryParse(a);
    MathExpr eb = MathExpr.tryParse(b);
    if (ea == null || eb == null) {
      return textEqual(a, b);
    }
    Map<String, Integer> vars = new HashMap<>(ea.variables());
    eb.variables().keySet().forEach(k -> vars.putIfAbsent(k, vars.size()));
    if (vars.isEmpty()) {
      return close(ea.eval(Map.of()), eb.eval(Map.of()));
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
