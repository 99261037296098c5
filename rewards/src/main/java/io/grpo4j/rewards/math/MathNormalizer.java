package io.grpo4j.rewards.math;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * String clean-up that makes equal answers look equal before any parsing: math delimiters, {@code \left/\right},
 * {@code \dfrac}, malformed {@code \frac13} / {@code \sqrt3}, {@code \text{}} wrappers and units, spacing commands,
 * thousands separators ({@code 1,000}, {@code 14{,}916}), currency, percent, degrees, trailing punctuation, a leading
 * {@code x =} or {@code x \in}, relations and set operators as single characters (≤ ≥ ≠ ∪ ±), "and" / "or" between
 * list items as commas.
 */
public final class MathNormalizer {
  private MathNormalizer() {}

  private static final Pattern THOUSANDS = Pattern.compile("^-?\\d{1,3}(,\\d{3})+(\\.\\d+)?$");
  private static final Pattern TEXT_CMD = Pattern.compile(
      "\\\\(?:text|textbf|textit|textnormal|textrm|mathrm|mathbf|mathit|mbox|operatorname)\\s*\\{([^{}]*)\\}");
  private static final Pattern UNIT_TAIL = Pattern.compile(
      "^(.*?[0-9}])\\s+(?:[a-zA-Z]{1,12}\\.?(?:\\^\\{?[23]\\}?|[²³])?)(?:\\s+[a-zA-Z]{1,12})*$");
  private static final Pattern LEADING_VAR = Pattern.compile(
      "^\\\\?[a-zA-Z]{1,6}(?:_\\{?[a-zA-Z0-9]+\\}?)?(?:\\([a-zA-Z]\\))?\\s*=\\s*(.+)$", Pattern.DOTALL);
  private static final Pattern LEADING_IN = Pattern.compile("^\\\\?[a-zA-Z]{1,6}\\s*\\\\in\\s*(.+)$", Pattern.DOTALL);
  private static final Pattern FRAC_DIGITS = Pattern.compile("\\\\frac\\s*(\\d)\\s*(\\d)");
  private static final Pattern FRAC_DIGIT_BRACE = Pattern.compile("\\\\frac\\s*(\\d)\\s*\\{");
  private static final Pattern FRAC_BRACE_DIGIT = Pattern.compile("\\\\frac\\s*(\\{[^{}]*\\})\\s*(\\d)");
  private static final Pattern SQRT_BARE = Pattern.compile("\\\\sqrt\\s*(\\d+|[a-zA-Z])");
  private static final Pattern LIST_WORD = Pattern.compile("\\s*,?\\s*(?:\\\\text\\{\\s*)?\\b(?:and|or)\\b(?:\\s*\\})?\\s*");
  // longest first, so that \leq is not read as \le + q
  private static final String[][] RELATIONS = {{"\\leqslant", "≤"}, {"\\geqslant", "≥"}, {"\\leq", "≤"},
      {"\\geq", "≥"}, {"\\neq", "≠"}, {"\\le", "≤"}, {"\\ge", "≥"}, {"\\ne", "≠"}, {"\\lt", "<"}, {"\\gt", ">"},
      {"<=", "≤"}, {">=", "≥"}, {"=<", "≤"}, {"!=", "≠"}, {"\\cup", "∪"}, {"\\pm", "±"}};

  /** @param degreesAsRadians when true, {@code 90^\circ} becomes {@code (90*\pi/180)}; else the degree mark is dropped */
  public static String normalize(String s, boolean degreesAsRadians) {
    if (s == null) {
      return null;
    }
    String t = s.trim();
    t = DOUBLED_COMMAND.matcher(t).replaceAll("\\\\"); // "\\\\left" written with an escaped backslash
    t = stripDelimiters(t);
    t = ARRAY.matcher(t).replaceAll("\\begin{pmatrix}").replace("\\end{array}", "\\end{pmatrix}");
    int approx = t.indexOf("\\approx");
    if (approx >= 0) {
      // "x = 1/3 \\approx 0.33": the exact value; "x \\approx 11": the value given
      t = t.substring(0, approx).contains("=") ? t.substring(0, approx) : t.replace("\\approx", "=");
    }
    t = t.replace("\\\\", ROW); // protect matrix row breaks from the spacing clean-up below
    t = t.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\displaystyle", "");
    t = t.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac");
    t = t.replace("{,}", ",").replace("\\{", "{").replace("\\}", "}");
    t = t.replace("\\$", "").replace("$", "");
    t = t.replace("\\%", "").replace("%", "");
    for (String[] r : RELATIONS) {
      t = replaceCommand(t, r[0], r[1]);
    }
    for (String deg : new String[] {"^{\\circ}", "^\\circ", "°", "\\degree", "^{\\circ }"}) {
      if (t.contains(deg)) {
        t = degreesAsRadians ? "(" + t.replace(deg, "") + ")*\\pi/180" : t.replace(deg, "");
      }
    }
    // \text{...} with a unit after a number: drop it; otherwise keep its content
    String prev;
    do {
      prev = t;
      if (t.indexOf('\\') < 0) {
        break;
      }
      Matcher m = TEXT_CMD.matcher(t);
      StringBuilder sb = new StringBuilder();
      while (m.find()) {
        String inner = m.group(1);
        String after = t.substring(m.end()).replaceAll("^\\^\\{?[23]\\}?", "").trim();
        // a \text{ cm} (and cm^2) after an answer is a unit: drop it
        boolean unitAfterNumber = m.start() > 0 && after.isEmpty() && WORDS.matcher(inner.trim()).matches()
            && !inner.trim().matches("(?i)and|or") && !t.substring(0, m.start()).isBlank();
        m.appendReplacement(sb, Matcher.quoteReplacement(unitAfterNumber ? "" : inner));
      }
      m.appendTail(sb);
      t = sb.toString();
    } while (!t.equals(prev));
    t = t.replace("\\,", "").replace("\\;", "").replace("\\:", "").replace("\\ ", " ").replace("\\qquad", " ")
        .replace("\\quad", " ").replace("~", " ");
    t = FRAC_DIGITS.matcher(t).replaceAll("\\\\frac{$1}{$2}");
    t = FRAC_DIGIT_BRACE.matcher(t).replaceAll("\\\\frac{$1}{");
    t = FRAC_BRACE_DIGIT.matcher(t).replaceAll("\\\\frac$1{$2}");
    t = SQRT_BARE.matcher(t).replaceAll("\\\\sqrt{$1}");
    t = t.trim();
    while (!t.isEmpty() && ".;:".indexOf(t.charAt(t.length() - 1)) >= 0) {
      t = t.substring(0, t.length() - 1).trim();
    }
    Matcher in = LEADING_IN.matcher(t);
    if (in.matches()) {
      t = in.group(1).trim();
    }
    Matcher lv = LEADING_VAR.matcher(t);
    if (lv.matches() && !lv.group(1).contains("=") && !lv.group(1).contains(",")) {
      t = lv.group(1).trim();
    }
    if (THOUSANDS.matcher(t).matches()) {
      t = t.replace(",", "");
    }
    // "5 cm", "12 apples", "3 dollars", "15 cm^2": a number followed by words is the number
    Matcher u = UNIT_TAIL.matcher(t);
    if (u.matches() && looksNumeric(u.group(1))) {
      t = u.group(1).trim();
      if (THOUSANDS.matcher(t).matches()) {
        t = t.replace(",", "");
      }
    }
    // "1, 2, and 3" / "12 and 13": a list
    if (t.matches(".*\\d.*") && LIST_WORD.matcher(t).find() && !t.matches(".*[a-zA-Z]{4,}.*and.*[a-zA-Z]{4,}.*")) {
      t = LIST_WORD.matcher(t).replaceAll(",");
    }
    // spaces go, except the one ending a command before a letter (\pi r is not \pir)
    t = COMMAND_SPACE.matcher(t).replaceAll("$1\u0002");
    return t.replace(" ", "").replace('\u0002', ' ').replace(ROW, "\\\\");
  }

  /** Replaces a command not followed by more letters (\le, not \left). */
  private static String replaceCommand(String t, String cmd, String by) {
    if (!t.contains(cmd)) {
      return t;
    }
    StringBuilder sb = new StringBuilder();
    int i = 0;
    while (true) {
      int j = t.indexOf(cmd, i);
      if (j < 0) {
        sb.append(t, i, t.length());
        return sb.toString();
      }
      int end = j + cmd.length();
      boolean word = cmd.startsWith("\\") && end < t.length() && Character.isLetter(t.charAt(end));
      sb.append(t, i, j).append(word ? cmd : by);
      i = end;
    }
  }

  private static final String ROW = "\u0001";
  private static final Pattern DOUBLED_COMMAND = Pattern.compile("\\\\\\\\(?=[a-zA-Z])");
  private static final Pattern ARRAY = Pattern.compile("\\\\begin\\{array\\}\\{[lcr|]*\\}");


  private static final Pattern COMMAND_SPACE = Pattern.compile("(\\\\[a-zA-Z]+)\\s+(?=[a-zA-Z])");
  private static final Pattern WORDS = Pattern.compile("[a-zA-Z .]+");
  private static final Pattern PLAIN_NUMBER = Pattern.compile("-?[0-9][0-9,]*(\\.[0-9]+)?");
  private static final Pattern SIMPLE_FRACTION = Pattern.compile("-?\\\\frac\\{[0-9]+\\}\\{[0-9]+\\}");

  private static boolean looksNumeric(String s) {
    return PLAIN_NUMBER.matcher(s.trim()).matches() || SIMPLE_FRACTION.matcher(s.trim()).matches();
  }

  static String stripDelimiters(String t) {
    boolean changed = true;
    while (changed) {
      changed = false;
      for (String[] d : new String[][] {{"$$", "$$"}, {"$", "$"}, {"\\(", "\\)"}, {"\\[", "\\]"}}) {
        if (t.length() >= d[0].length() + d[1].length() && t.startsWith(d[0]) && t.endsWith(d[1])) {
          t = t.substring(d[0].length(), t.length() - d[1].length()).trim();
          changed = true;
        }
      }
    }
    return t;
  }
}
