package io.grpo4j.rewards.math;

import java.util.regex.Pattern;

/**
 * String clean-up that makes equal answers look equal before any parsing: math delimiters, {@code \left/\right},
 * {@code \dfrac}, {@code \text{}}, spacing commands, thousands separators, percent, degrees, trailing units and
 * punctuation, a leading {@code x =}.
 */
public final class MathNormalizer {
  private MathNormalizer() {}

  private static final Pattern THOUSANDS = Pattern.compile("^-?\\d{1,3}(,\\d{3})+(\\.\\d+)?$");
  private static final Pattern TEXT_CMD = Pattern.compile("\\\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\\s*\\{([^{}]*)\\}");
  private static final Pattern UNIT_TAIL = Pattern.compile(
      "^(.*?[0-9])\\s+(?:[a-zA-Z]{1,12}\\.?(?:\\^?[23])?)(?:\\s+[a-zA-Z]{1,12})*$");
  private static final Pattern LEADING_VAR = Pattern.compile("^\\\\?[a-zA-Z]{1,6}(?:_\\{?[a-zA-Z0-9]+\\}?)?\\s*=\\s*(.+)$", Pattern.DOTALL);

  /** @param degreesAsRadians when true, {@code 90^\circ} becomes {@code (90*\pi/180)}; else the degree mark is dropped */
  public static String normalize(String s, boolean degreesAsRadians) {
    if (s == null) {
      return null;
    }
    String t = s.trim();
    t = stripDelimiters(t);
    t = t.replace("\\\\", ROW); // protect matrix row breaks from the spacing clean-up below
    t = t.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\displaystyle", "");
    t = t.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac");
    t = t.replace("{,}", ",").replace("\\{", "{").replace("\\}", "}");
    t = t.replace("\\$", "").replace("$", "");
    t = t.replace("\\%", "").replace("%", "");
    t = t.replace("\\le", "≤").replace("\\ge", "≥"); // keep comparisons distinguishable from letters
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
      var m = TEXT_CMD.matcher(t);
      StringBuilder sb = new StringBuilder();
      while (m.find()) {
        String inner = m.group(1);
        // a trailing \text{ cm} after an answer is a unit: drop it
        boolean unitAfterNumber = m.start() > 0 && m.end() == t.length() && WORDS.matcher(inner.trim()).matches()
            && !t.substring(0, m.start()).isBlank();
        m.appendReplacement(sb, java.util.regex.Matcher.quoteReplacement(unitAfterNumber ? "" : inner));
      }
      m.appendTail(sb);
      t = sb.toString();
    } while (!t.equals(prev));
    t = t.replace("\\,", "").replace("\\;", "").replace("\\:", "").replace("\\ ", " ").replace("\\quad", " ")
        .replace("~", " ");
    t = t.trim();
    while (!t.isEmpty() && ".;:".indexOf(t.charAt(t.length() - 1)) >= 0) {
      t = t.substring(0, t.length() - 1).trim();
    }
    var lv = LEADING_VAR.matcher(t);
    if (lv.matches() && !lv.group(1).contains("=")) {
      t = lv.group(1).trim();
    }
    if (THOUSANDS.matcher(t).matches()) {
      t = t.replace(",", "");
    }
    // "5 cm", "12 apples", "3 dollars": a number followed by words is the number
    var u = UNIT_TAIL.matcher(t);
    if (u.matches() && looksNumeric(u.group(1))) {
      t = u.group(1).trim();
      if (THOUSANDS.matcher(t).matches()) {
        t = t.replace(",", "");
      }
    }
    // spaces go, except the one ending a command before a letter (\pi r is not \pir)
    t = COMMAND_SPACE.matcher(t).replaceAll("$1\u0002");
    return t.replace(" ", "").replace('\u0002', ' ').replace(ROW, "\\\\");
  }

  private static final String ROW = "\u0001";
  private static final Pattern COMMAND_SPACE = Pattern.compile("(\\\\[a-zA-Z]+)\\s+(?=[a-zA-Z])");
  private static final Pattern WORDS = Pattern.compile("[a-zA-Z .]+");
  private static final Pattern PLAIN_NUMBER = Pattern.compile("-?[0-9][0-9,]*(\\.[0-9]+)?");
  private static final Pattern SIMPLE_FRACTION = Pattern.compile("\\\\frac\\{[0-9]+\\}\\{[0-9]+\\}");

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
