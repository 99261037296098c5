package io.grpo4j.rewards.math;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A parsed arithmetic expression in LaTeX or plain notation: numbers, single-letter variables, + - * / ^,
 * {@code \frac}, {@code \sqrt[n]{}}, {@code \pi}, {@code e}, implicit multiplication ({@code 2\sqrt{3}}, {@code 3x}),
 * functions ({@code \sin}, {@code \ln}, ...), factorial and absolute value. Evaluated numerically; two expressions
 * with variables are compared at random points (polynomial identity testing), which decides {@code x^2+1} =
 * {@code 1+x^2} and {@code 2\sqrt{3}} = {@code \sqrt{12}} without a full algebra system.
 */
public final class MathExpr {
  /** A compiled node: evaluates with the given variable values. */
  interface Node {
    double eval(double[] vars);
  }

  private final Node root;
  private final Map<String, Integer> variables;

  private MathExpr(Node root, Map<String, Integer> variables) {
    this.root = root;
    this.variables = variables;
  }

  public Map<String, Integer> variables() {
    return variables;
  }

  public double eval(Map<String, Double> values) {
    double[] v = new double[variables.size()];
    variables.forEach((name, i) -> v[i] = values.getOrDefault(name, 0.0));
    return root.eval(v);
  }

  /** Parses or returns null when the text is not an expression this grammar covers. */
  public static MathExpr tryParse(String text) {
    try {
      Parser p = new Parser(Lexer.lex(text));
      Node n = p.parseExpr();
      if (!p.atEnd()) {
        return null;
      }
      return new MathExpr(n, p.vars);
    } catch (RuntimeException e) {
      return null;
    }
  }

  // ---------------------------------------------------------------- lexer

  record Tok(char kind, String text, double num) {} // kind: n number, v variable/name, c command, o operator

  static final class Lexer {
    static List<Tok> lex(String s) {
      List<Tok> out = new ArrayList<>();
      int i = 0;
      while (i < s.length()) {
        char ch = s.charAt(i);
        if (Character.isWhitespace(ch)) {
          i++;
        } else if (Character.isDigit(ch) || (ch == '.' && i + 1 < s.length() && Character.isDigit(s.charAt(i + 1)))) {
          int j = i;
          while (j < s.length() && (Character.isDigit(s.charAt(j)) || s.charAt(j) == '.')) {
            j++;
          }
          // scientific notation: 1.5e-3 / 2E5 (an 'e' followed by digits, not Euler's number)
          if (j + 1 < s.length() && (s.charAt(j) == 'e' || s.charAt(j) == 'E')) {
            int k = j + 1;
            if (s.charAt(k) == '+' || s.charAt(k) == '-') {
              k++;
            }
            if (k < s.length() && Character.isDigit(s.charAt(k))) {
              while (k < s.length() && Character.isDigit(s.charAt(k))) {
                k++;
              }
              j = k;
            }
          }
          String num = s.substring(i, j);
          if (num.indexOf('.') != num.lastIndexOf('.')) {
            throw new IllegalArgumentException("bad number " + num);
          }
          out.add(new Tok('n', num, Double.parseDouble(num)));
          i = j;
        } else if (ch == '\\') {
          int j = i + 1;
          while (j < s.length() && Character.isLetter(s.charAt(j))) {
            j++;
          }
          if (j == i + 1) {
            // \{ \} \, and friends
            if (j < s.length()) {
              char c = s.charAt(j);
              if (c == '{' || c == '}') {
                out.add(new Tok('o', String.valueOf(c == '{' ? '(' : ')'), 0));
              }
              i = j + 1;
            } else {
              i = j;
            }
            continue;
          }
          out.add(new Tok('c', s.substring(i + 1, j), 0));
          i = j;
        } else if (Character.isLetter(ch)) {
          int j = i;
          while (j < s.length() && Character.isLetter(s.charAt(j))) {
            j++;
          }
          String word = s.substring(i, j);
          if (FUNCTIONS.contains(word)) {
            out.add(new Tok('c', word, 0));
          } else {
            for (char c : word.toCharArray()) {
              out.add(new Tok('v', String.valueOf(c), 0)); // xy = x*y
            }
          }
          i = j;
        } else if ("+-*/^(){}[]!|,".indexOf(ch) >= 0) {
          out.add(new Tok('o', String.valueOf(ch), 0));
          i++;
        } else if (ch == '·' || ch == '×') {
          out.add(new Tok('o', "*", 0));
          i++;
        } else if (ch == '÷') {
          out.add(new Tok('o', "/", 0));
          i++;
        } else if (ch == '−') {
          out.add(new Tok('o', "-", 0));
          i++;
        } else if (ch == 'π') {
          out.add(new Tok('c', "pi", 0));
          i++;
        } else if (ch == '√') {
          out.add(new Tok('c', "sqrt", 0));
          i++;
        } else {
          throw new IllegalArgumentException("unexpected character " + ch);
        }
      }
      return out;
    }
  }

  static final java.util.Set<String> FUNCTIONS = java.util.Set.of("sin", "cos", "tan", "cot", "sec", "csc", "ln",
      "log", "exp", "sqrt", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "abs");

  // ---------------------------------------------------------------- parser

  static final class Parser {
    private final List<Tok> toks;
    private int pos;
    final Map<String, Integer> vars = new LinkedHashMap<>();

    Parser(List<Tok> toks) {
      this.toks = toks;
    }

    boolean atEnd() {
      return pos >= toks.size();
    }

    private Tok peek() {
      return pos < toks.size() ? toks.get(pos) : null;
    }

    private boolean isOp(String o) {
      Tok t = peek();
      return t != null && t.kind() == 'o' && t.text().equals(o);
    }

    private boolean isCmd(String... names) {
      Tok t = peek();
      if (t == null || t.kind() != 'c') {
        return false;
      }
      for (String n : names) {
        if (t.text().equals(n)) {
          return true;
        }
      }
      return false;
    }

    private void expect(String o) {
      if (!isOp(o)) {
        throw new IllegalArgumentException("expected " + o);
      }
      pos++;
    }

    Node parseExpr() {
      Node left = parseTerm();
      while (isOp("+") || isOp("-")) {
        boolean plus = toks.get(pos++).text().equals("+");
        Node l = left;
        Node r = parseTerm();
        left = plus ? v -> l.eval(v) + r.eval(v) : v -> l.eval(v) - r.eval(v);
      }
      return left;
    }

    Node parseTerm() {
      Node left = parseUnary();
      while (true) {
        if (isOp("*") || isCmd("cdot", "times", "ast")) {
          pos++;
          Node l = left;
          Node r = parseUnary();
          left = v -> l.eval(v) * r.eval(v);
        } else if (isOp("/") || isCmd("div")) {
          pos++;
          Node l = left;
          Node r = parseUnary();
          left = v -> l.eval(v) / r.eval(v);
        } else if (startsPrimary()) {
          Node l = left;
          Node r = parsePower(); // implicit multiplication binds like *
          left = v -> l.eval(v) * r.eval(v);
        } else {
          return left;
        }
      }
    }

    private boolean startsPrimary() {
      Tok t = peek();
      if (t == null) {
        return false;
      }
      return switch (t.kind()) {
        case 'n', 'v' -> true;
        case 'c' -> !t.text().equals("cdot") && !t.text().equals("times") && !t.text().equals("div")
            && !t.text().equals("ast");
        default -> t.text().equals("(") || t.text().equals("{") || t.text().equals("[");
      };
    }

    Node parseUnary() {
      if (isOp("-")) {
        pos++;
        Node n = parseUnary();
        return v -> -n.eval(v);
      }
      if (isOp("+")) {
        pos++;
        return parseUnary();
      }
      return parsePower();
    }

    Node parsePower() {
      Node base = parsePostfix();
      if (isOp("^")) {
        pos++;
        Node exp = isOp("{") ? parseGroup() : parseExponentAtom();
        Node b = base;
        return v -> Math.pow(b.eval(v), exp.eval(v));
      }
      return base;
    }

    // x^2, x^-1, x^{...}: an exponent without braces is one atom, possibly signed
    private Node parseExponentAtom() {
      if (isOp("-")) {
        pos++;
        Node n = parseExponentAtom();
        return v -> -n.eval(v);
      }
      Tok t = peek();
      if (t != null && t.kind() == 'n' && t.text().length() > 1 && !t.text().contains(".")) {
        // LaTeX x^23 means x^2 * 3 would be odd; keep the whole number as transformers-era graders do
        pos++;
        double d = t.num();
        return v -> d;
      }
      return parsePostfix();
    }

    Node parsePostfix() {
      Node n = parsePrimary();
      while (isOp("!")) {
        pos++;
        Node inner = n;
        n = v -> factorial(inner.eval(v));
      }
      return n;
    }

    private Node parseGroup() {
      if (isOp("{")) {
        pos++;
        Node n = parseExpr();
        expect("}");
        return n;
      }
      // \frac12: a one-character argument
      Tok t = peek();
      if (t != null && t.kind() == 'n' && t.text().length() > 1 && !t.text().contains(".")) {
        pos++;
        double first = t.text().charAt(0) - '0';
        String rest = t.text().substring(1);
        toks.add(pos, new Tok('n', rest, Double.parseDouble(rest)));
        return v -> first;
      }
      return parsePrimary();
    }

    Node parsePrimary() {
      Tok t = peek();
      if (t == null) {
        throw new IllegalArgumentException("unexpected end");
      }
      pos++;
      switch (t.kind()) {
        case 'n' -> {
          double d = t.num();
          return v -> d;
        }
        case 'v' -> {
          if (t.text().equals("e")) {
            return v -> Math.E;
          }
          int idx = vars.computeIfAbsent(t.text(), k -> vars.size());
          return v -> v[idx];
        }
        case 'c' -> {
          return command(t.text());
        }
        default -> {
          switch (t.text()) {
            case "(", "[" -> {
              String close = t.text().equals("(") ? ")" : "]";
              Node n = parseExpr();
              expect(close);
              return n;
            }
            case "{" -> {
              Node n = parseExpr();
              expect("}");
              return n;
            }
            case "|" -> {
              Node n = parseExpr();
              expect("|");
              return v -> Math.abs(n.eval(v));
            }
            default -> throw new IllegalArgumentException("unexpected " + t.text());
          }
        }
      }
    }

    private Node command(String name) {
      switch (name) {
        case "frac", "dfrac", "tfrac", "cfrac" -> {
          Node a = parseGroup();
          Node b = parseGroup();
          return v -> a.eval(v) / b.eval(v);
        }
        case "sqrt" -> {
          if (isOp("[")) {
            pos++;
            Node k = parseExpr();
            expect("]");
            Node x = parseGroup();
            return v -> root(x.eval(v), k.eval(v));
          }
          Node x = isOp("(") ? parsePrimary() : parseGroup();
          return v -> Math.sqrt(x.eval(v));
        }
        case "pi" -> {
          return v -> Math.PI;
        }
        case "infty" -> {
          return v -> Double.POSITIVE_INFINITY;
        }
        case "left", "right", "big", "Big" -> {
          return parsePrimary();
        }
        default -> {
          if (FUNCTIONS.contains(name)) {
            Node arg = isOp("{") ? parseGroup() : isOp("(") ? parsePrimary() : parsePower();
            return function(name, arg);
          }
          // Greek letters and other named symbols are variables
          int idx = vars.computeIfAbsent("\\" + name, k -> vars.size());
          return v -> v[idx];
        }
      }
    }
  }

  private static Node function(String name, Node a) {
    return switch (name) {
      case "sin" -> v -> Math.sin(a.eval(v));
      case "cos" -> v -> Math.cos(a.eval(v));
      case "tan" -> v -> Math.tan(a.eval(v));
      case "cot" -> v -> 1 / Math.tan(a.eval(v));
      case "sec" -> v -> 1 / Math.cos(a.eval(v));
      case "csc" -> v -> 1 / Math.sin(a.eval(v));
      case "ln" -> v -> Math.log(a.eval(v));
      case "log" -> v -> Math.log10(a.eval(v));
      case "exp" -> v -> Math.exp(a.eval(v));
      case "sqrt" -> v -> Math.sqrt(a.eval(v));
      case "arcsin" -> v -> Math.asin(a.eval(v));
      case "arccos" -> v -> Math.acos(a.eval(v));
      case "arctan" -> v -> Math.atan(a.eval(v));
      case "sinh" -> v -> Math.sinh(a.eval(v));
      case "cosh" -> v -> Math.cosh(a.eval(v));
      case "tanh" -> v -> Math.tanh(a.eval(v));
      case "abs" -> v -> Math.abs(a.eval(v));
      default -> throw new IllegalArgumentException(name);
    };
  }

  static double root(double x, double k) {
    if (x < 0 && k % 2 == 1) {
      return -Math.pow(-x, 1 / k);
    }
    return Math.pow(x, 1 / k);
  }

  static double factorial(double x) {
    if (x < 0 || x != Math.rint(x) || x > 170) {
      return Double.NaN;
    }
    double r = 1;
    for (int i = 2; i <= (int) x; i++) {
      r *= i;
    }
    return r;
  }
}
