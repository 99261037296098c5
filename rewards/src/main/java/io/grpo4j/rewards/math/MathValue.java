package io.grpo4j.rewards.math;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An answer's structure, read from normalised LaTeX (see {@link MathNormalizer}): a scalar expression, a tuple, an
 * unordered set or list, an interval, a union, a relation chain ({@code x \ge 5}, {@code a < x \le b}, {@code k = 3}),
 * a matrix, or text. Built by splitting at top level (outside brackets), outermost structure first: matrix, union
 * ({@code \cup}), list (commas, semicolons), bracketed tuple / set / interval, relation, {@code \pm}.
 */
public sealed interface MathValue {
  /** An expression: {@code expr} is null when it does not parse (then only its text can be compared). */
  record Scalar(String text, MathExpr expr) implements MathValue {
    /** Written with a decimal point: compared after rounding (a float), like Math-Verify. */
    boolean isFloat() {
      return text.matches(".*\\d\\.\\d.*|.*(^|[^\\d])\\.\\d.*");
    }
  }

  /** Ordered: {@code (a, b)}, {@code [a, b, c]}; {@code open}/{@code close} are its brackets. */
  record Tuple(List<MathValue> items, char open, char close) implements MathValue {}

  /** Unordered: {@code \{a, b\}}, a bare {@code a, b}, the two values of {@code a \pm b}. */
  record SetOf(List<MathValue> items) implements MathValue {}

  record Interval(MathValue lo, MathValue hi, boolean loOpen, boolean hiOpen) implements MathValue {}

  record Union(List<MathValue> parts) implements MathValue {}

  /** {@code sides[0] ops[0] sides[1] ops[1] ...}; ops are = ≠ < > ≤ ≥. */
  record Relation(List<MathValue> sides, List<String> ops) implements MathValue {
    /**
     * {@code x = 5}, {@code (p, q) = (3, 2)}, {@code f(x) = ...}, {@code \frac{NO}{BO} = ...}, {@code V_1:V_2 = ...}:
     * one "=" whose left side holds names only (no numbers outside subscripts), as Math-Verify's "only symbols".
     */
    boolean isAssignment() {
      if (ops.size() != 1 || !ops.get(0).equals("=")) {
        return false;
      }
      String lhs = text(sides.get(0));
      if (lhs == null) {
        return false;
      }
      String bare = lhs.replaceAll("_\\{[^{}]*\\}|_[a-zA-Z0-9]", "").replaceAll("\\\\[a-zA-Z]+", "");
      return bare.matches(".*[a-zA-Z].*") && !bare.matches(".*\\d.*");
    }

    /** No names at all (1/2 = 10/9): a statement that is just true or false, not an answer. */
    boolean isNumeric() {
      for (MathValue v : sides) {
        if (!(v instanceof Scalar sc) || sc.expr() == null || !sc.expr().variables().isEmpty()) {
          return false;
        }
      }
      return true;
    }
  }

  record Matrix(List<List<MathValue>> rows) implements MathValue {}

  record Text(String text) implements MathValue {}

  Pattern MATRIX = Pattern.compile("^\\\\begin\\{[pbvBV]?matrix\\}(.*)\\\\end\\{[pbvBV]?matrix\\}$", Pattern.DOTALL);
  String RELATIONS = "=≠<>≤≥";

  private static String text(MathValue v) {
    return v instanceof Scalar s ? s.text() : v instanceof Tuple t ? textOfTuple(t) : v instanceof Text x ? x.text()
        : null;
  }

  private static String textOfTuple(Tuple t) {
    StringBuilder sb = new StringBuilder().append(t.open());
    for (int i = 0; i < t.items().size(); i++) {
      String x = text(t.items().get(i));
      if (x == null) {
        return null;
      }
      sb.append(i == 0 ? "" : ",").append(x);
    }
    return sb.append(t.close()).toString();
  }

  /** Reads a normalised answer. Never throws: what is not understood is {@link Text}. */
  static MathValue parse(String s) {
    s = s.trim();
    if (s.isEmpty()) {
      return new Text("");
    }
    Matcher mm = MATRIX.matcher(s);
    if (mm.matches()) {
      List<List<MathValue>> rows = new ArrayList<>();
      for (String row : mm.group(1).split("\\\\\\\\")) {
        if (row.isBlank()) {
          continue;
        }
        List<MathValue> cells = new ArrayList<>();
        for (String c : row.split("&")) {
          cells.add(parse(c));
        }
        rows.add(cells);
      }
      return new Matrix(rows);
    }
    List<String> union = split(s, "∪");
    if (union.size() > 1) {
      List<MathValue> parts = new ArrayList<>();
      union.forEach(u -> parts.add(parse(u)));
      return new Union(parts);
    }
    List<String> list = split(s, ",;");
    if (list.size() > 1) {
      List<MathValue> items = new ArrayList<>();
      for (String x : list) {
        if (!x.isEmpty()) {
          items.add(parse(x));
        }
      }
      return items.size() == 1 ? items.get(0) : new SetOf(items);
    }
    if (s.length() >= 2 && "([{".indexOf(s.charAt(0)) >= 0 && ")]}".indexOf(s.charAt(s.length() - 1)) >= 0
        && closes(s)) {
      String inner = s.substring(1, s.length() - 1);
      List<String> parts = split(inner, ",;");
      char o = s.charAt(0);
      char c = s.charAt(s.length() - 1);
      if (o == '{') {
        List<MathValue> items = new ArrayList<>();
        parts.forEach(x -> items.add(parse(x)));
        return new SetOf(items);
      }
      if (parts.size() > 1) {
        List<MathValue> items = new ArrayList<>();
        parts.forEach(x -> items.add(parse(x)));
        if (parts.size() == 2 && (o == '[' || c == ']')) {
          return new Interval(items.get(0), items.get(1), o == '(', c == ')');
        }
        return new Tuple(items, o, c);
      }
    }
    List<String> ops = new ArrayList<>();
    List<String> sides = splitRelations(s, ops);
    if (sides.size() > 1) {
      if (ops.stream().allMatch("="::equals) && sides.size() > 2) {
        return parse(sides.get(sides.size() - 1)); // a = b = c: the last one (a worked chain ends in its value)
      }
      List<MathValue> vs = new ArrayList<>();
      sides.forEach(x -> vs.add(parse(x)));
      return new Relation(vs, ops);
    }
    int pm = s.indexOf('±');
    if (pm >= 0 && s.indexOf('±', pm + 1) < 0) {
      String a = s.substring(0, pm).trim();
      String b = s.substring(pm + 1).trim();
      if (a.isEmpty()) {
        return new SetOf(List.of(parse(b), parse("-(" + b + ")")));
      }
      return new SetOf(List.of(parse(a + "+(" + b + ")"), parse(a + "-(" + b + ")")));
    }
    MathExpr e = MathExpr.tryParse(s);
    return new Scalar(s, e);
  }

  /** Whether the bracket at 0 closes at the very end (so "(a)+(b)" is not one bracketed value). */
  private static boolean closes(String s) {
    int depth = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if ("([{".indexOf(c) >= 0) {
        depth++;
      } else if (")]}".indexOf(c) >= 0) {
        depth--;
        if (depth == 0 && i < s.length() - 1) {
          return false;
        }
      }
    }
    return depth == 0;
  }

  /** Splits at any of {@code seps} outside brackets (an interval's "[a, b)" counts as a bracket pair). */
  static List<String> split(String s, String seps) {
    return splitTopLevel(s, seps, null);
  }

  /**
   * The parts of {@code s} between the characters of {@code seps} that stand outside brackets; {@code found}, when
   * given, receives those separators in order.
   */
  private static List<String> splitTopLevel(String s, String seps, List<String> found) {
    List<String> out = new ArrayList<>();
    int depth = 0;
    int start = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if ("([{".indexOf(c) >= 0) {
        depth++;
      } else if (")]}".indexOf(c) >= 0) {
        depth = Math.max(0, depth - 1);
      } else if (depth == 0 && seps.indexOf(c) >= 0) {
        out.add(s.substring(start, i).trim());
        if (found != null) {
          found.add(String.valueOf(c));
        }
        start = i + 1;
      }
    }
    out.add(s.substring(start).trim());
    return out;
  }

  /** Splits a relation chain at top-level = ≠ < > ≤ ≥; {@code ops} receives the operators. */
  private static List<String> splitRelations(String s, List<String> ops) {
    List<String> out = splitTopLevel(s, RELATIONS, ops);
    if (out.stream().anyMatch(String::isEmpty)) {
      ops.clear();
      return List.of(s);
    }
    return out;
  }
}
