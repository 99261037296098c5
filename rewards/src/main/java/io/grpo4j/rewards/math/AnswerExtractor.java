package io.grpo4j.rewards.math;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds the final answer in a completion (or a gold solution), the way Hugging Face Math-Verify does, plus the R1
 * answer tag. Modes, any subset, in any order ({@code extract:}):
 *
 * <ul>
 *   <li>{@code answer_tag}: when the text has {@code <answer>...</answer>}, only the last such block is searched (with
 *       the other modes), and the whole block is the answer when none of them finds anything in it.
 *   <li>{@code boxed}: {@code \boxed{...}} (also inside $...$), Math-Verify's boxed extraction at top priority.
 *   <li>{@code latex}: math in {@code $...$}, {@code \(...\)} (one line), {@code $$...$$}, {@code \[...\]} (any lines),
 *       {@code [ ... ]} between spaces, a bare {@code \frac{a}{b}}; up to six joined by "and", "or" or commas (a list
 *       answer); a following %, "percent" or "pct" makes it a percentage.
 *   <li>{@code expr}: a plain number (thousands separators "1,000" / "1 000", a decimal comma "2,74", ".4", a currency
 *       sign before, a unit or % after) or an arithmetic expression ("1/3", "2^10-1") standing on its own.
 *   <li>{@code gsm8k}: a {@code #### 42} tail. {@code regex}: group 1 of a user pattern.
 * </ul>
 *
 * <p>Priorities, as in Math-Verify: "final answer is X. I hope" first, then {@code \boxed}, then "final answer ... is
 * X", then "answer: ... X", then "answer ... X", then any latex or expression. Within one priority the rightmost match
 * wins; the caller tries candidates in order until one parses. Reasoning inside {@code <think>} is never searched.
 */
public final class AnswerExtractor {
  /** Where an answer string came from: how to read it. */
  public enum Kind {
    LATEX, // normalise as LaTeX
    EXPR, // a plain number or expression
    TEXT // taken as it is (a tag's whole content, a regex group)
  }

  /** One extracted answer: its text, how to read it, and whether a percent sign followed it. */
  public record Candidate(String text, Kind kind, boolean percent) {}

  public static final List<String> MODES = List.of("answer_tag", "boxed", "latex", "expr", "gsm8k", "regex");
  /** What {@code math_answer} uses unless told otherwise: R1 tags, boxed answers and free text all score. */
  public static final List<String> DEFAULT_MODES = List.of("answer_tag", "boxed", "latex", "expr");

  private static final Pattern ANSWER_TAG = Pattern.compile("<answer>(.*?)</answer>", Pattern.DOTALL);
  private static final Pattern GSM8K = Pattern.compile("####\\s*([^\\n]+)");

  private final List<String> modes;
  private final Pattern regex;
  private final List<Rule> rules; // every pattern with its priority and kind, sorted by priority

  private record Rule(Pattern pattern, int priority, Kind kind, boolean needsAnswerWord, boolean needsLatex) {}

  public AnswerExtractor(List<String> modes, Pattern regex) {
    for (String m : modes) {
      if (!MODES.contains(m)) {
        throw new IllegalArgumentException("unknown extraction mode \"" + m + "\"; allowed: " + MODES);
      }
    }
    this.modes = List.copyOf(modes);
    this.regex = regex;
    List<Rule> r = new ArrayList<>();
    if (modes.contains("latex") || modes.contains("boxed")) {
      Patterns.latexRules(modes.contains("latex"), modes.contains("boxed"), r);
    }
    if (modes.contains("expr")) {
      Patterns.exprRules(r);
    }
    r.sort(Comparator.comparingInt(Rule::priority));
    this.rules = r;
  }

  public List<String> modes() {
    return modes;
  }

  /** The first candidate, as text (null when nothing was found). */
  public String extract(String text) {
    List<Candidate> c = candidates(text);
    return c.isEmpty() ? null : c.get(0).text();
  }

  /** Every candidate answer, most likely first (try them in order: the first one that parses is the answer). */
  public List<Candidate> candidates(String text) {
    List<Candidate> all = new ArrayList<>();
    find(text, c -> {
      all.add(c);
      return false;
    });
    return all;
  }

  /**
   * Offers candidates to {@code accept} most likely first and stops at the first it accepts (returned; null when
   * none was): later priorities are not even searched, as in Math-Verify.
   */
  public Candidate find(String text, java.util.function.Predicate<Candidate> accept) {
    for (Candidate c : (Iterable<Candidate>) () -> lazy(text)) {
      if (accept.test(c)) {
        return c;
      }
    }
    return null;
  }

  private java.util.Iterator<Candidate> lazy(String text) {
    return new java.util.Iterator<>() {
      private final java.util.ArrayDeque<Candidate> ready = new java.util.ArrayDeque<>();
      private List<java.util.function.Supplier<List<Candidate>>> stages;
      private int stage;

      @Override
      public boolean hasNext() {
        if (stages == null) {
          stages = stages(text);
        }
        while (ready.isEmpty() && stage < stages.size()) {
          ready.addAll(stages.get(stage++).get());
        }
        return !ready.isEmpty();
      }

      @Override
      public Candidate next() {
        if (!hasNext()) {
          throw new java.util.NoSuchElementException();
        }
        return ready.poll();
      }
    };
  }

  /** The search as stages, computed only when the earlier ones gave nothing acceptable. */
  private List<java.util.function.Supplier<List<Candidate>>> stages(String text) {
    List<java.util.function.Supplier<List<Candidate>>> out = new ArrayList<>();
    if (text == null) {
      return out;
    }
    String visible = withoutThinking(text);
    String tag = modes.contains("answer_tag") ? answerTag(visible) : null;
    String region = tag != null ? tag : visible;
    for (String m : modes) {
      if (m.equals("gsm8k")) {
        out.add(() -> {
          String g = gsm8k(region);
          return g == null || g.isBlank() ? List.of() : List.of(new Candidate(g.trim(), Kind.EXPR, false));
        });
      } else if (m.equals("regex") && regex != null) {
        out.add(() -> {
          String g = byRegex(region);
          return g == null || g.isBlank() ? List.of() : List.of(new Candidate(g.trim(), Kind.TEXT, false));
        });
      }
    }
    if (tag == null || tag.isBlank()) {
      for (int p : priorities()) {
        out.add(() -> prioritized(region, p));
      }
      return out;
    }
    // inside an answer block: boxed / $...$ answers first, then the block itself (the R1 way: "<answer>(1, 2)
    // </answer>" is the pair, not its last number), then numbers found in it
    List<Candidate> found = new ArrayList<>();
    for (int p : priorities()) {
      found.addAll(prioritized(region, p));
    }
    out.add(() -> found.stream().filter(c -> c.kind() == Kind.LATEX).toList());
    out.add(() -> List.of(new Candidate(tag.trim(), Kind.TEXT, false)));
    out.add(() -> found.stream().filter(c -> c.kind() != Kind.LATEX).toList());
    return out;
  }

  private List<Integer> priorities() {
    return rules.stream().map(Rule::priority).distinct().toList();
  }

  /** Math-Verify's search at one priority: every pattern's matches, from the rightmost leftwards. */
  private List<Candidate> prioritized(String region, int priority) {
    boolean answerWord = region.toLowerCase(Locale.ROOT).contains("answer");
    boolean latexish = region.indexOf('$') >= 0 || region.contains("\\(") || region.contains("\\[")
        || region.contains("\\frac") || region.contains("\\boxed") || region.contains(" [");
    List<Found> found = new ArrayList<>();
    for (Rule rule : rules) {
      if (rule.priority() != priority || rule.needsAnswerWord() && !answerWord || rule.needsLatex() && !latexish) {
        continue;
      }
      Matcher m = rule.pattern().matcher(region);
      while (m.find()) {
        found.add(new Found(rule.kind() == Kind.LATEX ? Patterns.latexCandidates(m) : Patterns.exprCandidates(m),
            m.start(), m.end()));
      }
    }
    found.sort(Comparator.comparingInt(Found::end).thenComparingInt(f -> -f.start()).reversed());
    List<Candidate> out = new ArrayList<>();
    for (Found f : found) {
      out.addAll(f.candidates());
    }
    return out;
  }

  private record Found(List<Candidate> candidates, int start, int end) {}

  /** Everything after the last {@code </think>}; an unclosed {@code <think>} hides the rest of the text. */
  static String withoutThinking(String text) {
    int close = text.lastIndexOf("</think>");
    if (close >= 0) {
      return text.substring(close + "</think>".length());
    }
    int open = text.indexOf("<think>");
    return open >= 0 ? text.substring(0, open) : text;
  }

  static String answerTag(String text) {
    Matcher m = ANSWER_TAG.matcher(text);
    String last = null;
    while (m.find()) {
      last = m.group(1);
    }
    return last;
  }

  /** The content of the last \boxed{...} or \fbox{...}, braces balanced; null if none. */
  public static String lastBoxed(String text) {
    int at = Math.max(text.lastIndexOf("\\boxed"), text.lastIndexOf("\\fbox"));
    if (at < 0) {
      return null;
    }
    int i = at + (text.startsWith("\\boxed", at) ? 6 : 5);
    while (i < text.length() && text.charAt(i) == ' ') {
      i++;
    }
    if (i >= text.length() || text.charAt(i) != '{') {
      // "\boxed 5"
      String rest = text.substring(i).trim();
      int end = 0;
      while (end < rest.length() && !Character.isWhitespace(rest.charAt(end)) && rest.charAt(end) != '$') {
        end++;
      }
      return end == 0 ? null : rest.substring(0, end);
    }
    int depth = 0;
    for (int j = i; j < text.length(); j++) {
      char c = text.charAt(j);
      if (c == '\\' && j + 1 < text.length() && (text.charAt(j + 1) == '{' || text.charAt(j + 1) == '}')) {
        j++; // an escaped brace does not nest
      } else if (c == '{') {
        depth++;
      } else if (c == '}') {
        depth--;
        if (depth == 0) {
          return text.substring(i + 1, j);
        }
      }
    }
    return null; // unbalanced
  }

  static String gsm8k(String text) {
    Matcher m = GSM8K.matcher(text);
    String last = null;
    while (m.find()) {
      last = m.group(1);
    }
    return last;
  }

  private String byRegex(String text) {
    Matcher m = regex.matcher(text);
    String last = null;
    while (m.find()) {
      last = m.groupCount() >= 1 ? m.group(1) : m.group();
    }
    return last;
  }

  /** Math-Verify's extraction patterns (parser.py), ported to Java regex syntax. */
  static final class Patterns {
    private Patterns() {}

    private static final String[] LATEX_GROUPS = {"latexDisplayDollar", "latexDisplayBracket", "latexInlineDollar",
        "latexInlineParenthesis", "latexInlineBracket", "latexFraction", "latexBoxed"};
    private static final String[] PREFIXES = {"first", "next1", "next2", "next3", "next4", "next5"};

    /** One latex environment (plain, or holding a \boxed{}), its groups named with {@code prefix}. */
    static String env(String prefix, boolean boxed) {
      String percent = "(?<" + prefix + "percent>(?:\\\\?%|[Pp]ercent|[Pp]ercentage|[Pp]ct))";
      String displayDollar = "(?:[^$]|\\$(?!\\$))";
      String displayBracket = "(?:[^\\\\]|\\\\(?!\\]))";
      String inlineDollar = "(?:\\\\[$]|[^\\n$])";
      String inlineParen = "(?:[^\\\\\\n]|\\\\(?!\\)))";
      String inlineBracket = "[^\\n\\]\\[]";
      String[] content = {displayDollar, displayBracket, inlineDollar, inlineParen, inlineBracket};
      for (int k = 0; k < content.length; k++) {
        content[k] = boxed ? content[k] + "*?\\\\boxed\\{" + content[k] + "+?\\}" + content[k] + "*?"
            : content[k] + "+?";
      }
      List<String> p = new ArrayList<>();
      p.add("(?<!\\\\)\\$\\$(?<" + prefix + "latexDisplayDollar>" + content[0] + ")(?<!\\\\)\\$\\$");
      p.add("(?<!\\\\)\\\\\\[(?<" + prefix + "latexDisplayBracket>" + content[1] + ")(?<!\\\\)\\\\\\]");
      p.add("(?<!\\\\|\\d)\\$(?<" + prefix + "latexInlineDollar>" + content[2] + ")(?<!\\\\)\\$");
      p.add("(?<!\\\\)\\\\\\((?<" + prefix + "latexInlineParenthesis>" + content[3] + ")(?<!\\\\)\\\\\\)");
      p.add("\\s\\[(?<" + prefix + "latexInlineBracket>" + content[4] + ")\\]\\s");
      if (!boxed) {
        String simple = "-?\\d+(?:[.,]\\d+)?";
        p.add("(?<" + prefix + "latexFraction>-?\\\\frac\\{" + simple + "\\}\\{" + simple + "\\})");
      }
      return "(?:(?:" + String.join("|", p) + ")\\s*" + percent + "?)";
    }

    static String envs(boolean boxed) {
      StringBuilder sb = new StringBuilder(env("first", boxed));
      for (int i = 1; i <= 5; i++) {
        sb.append(boxed ? "\\s*" : "").append("(?:\\s*(?:,?and|,?or|,)\\s*").append(env("next" + i, boxed))
            .append(")?");
      }
      return sb.toString();
    }

    static void latexRules(boolean latex, boolean boxed, List<Rule> out) {
      int flags = Pattern.DOTALL;
      if (latex) {
        String envs = "(?:" + envs(false) + ")";
        out.add(new Rule(Pattern.compile("(?i:final answer is):?\\s*" + envs + "\\.?\\s?I hope", flags), 0,
            Kind.LATEX, true, true));
        out.add(new Rule(Pattern.compile("(?i:final answer.{0,100}?)\\s+is:?\\s*" + envs, flags), 50, Kind.LATEX,
            true, true));
        out.add(new Rule(Pattern.compile("(?i:answer):.{0,50}?" + envs, flags), 100, Kind.LATEX, true, true));
        out.add(new Rule(Pattern.compile("(?i:answer).{0,50}?" + envs, flags), 200, Kind.LATEX, true, true));
        out.add(new Rule(Pattern.compile(envs, flags), 300, Kind.LATEX, false, true));
      }
      if (boxed) {
        // boxed answers first (what models trained on MATH write; Math-Verify's tests give it priority 0)
        out.add(new Rule(Pattern.compile(envs(true), flags), 10, Kind.LATEX, false, true));
        out.add(new Rule(Pattern.compile("(?<firstlatexBoxed>\\\\boxed\\{.+\\})", flags), 10, Kind.LATEX, false,
            true));
      }
    }

    static void exprRules(List<Rule> out) {
      String number = "(?<!\\d)(?:(?<integer1>-?[1-9]\\d{0,2}(?:[ ,]\\d{3})+)(?<decimal1>\\.\\d+)?|"
          + "(?<integer2>-?\\d+)(?<decimal2>[.,]\\d+)|(?<decimal3>\\.\\d+)|(?<integer3>-?\\d+))"
          + "(?<percent>\\s*(?:%|[Pp]ercent|\\s*[Pp]ercentage|\\s*[Pp]ct))?";
      String ops = "\\+\\-\\*\\×\\/\\^\\(\\)\\÷";
      String chars = "[\\d\\.\\s" + ops + "]";
      String expr = "(?<expr>-?\\(?-?\\d" + chars + "*[" + ops + "]" + chars + "+\\)?)";
      String currency = "$€£¥₹₽₪₩₫฿₡₢₣₤₥₦₧₨₭₮₯₰₱₲₳₴₵₶₷₸₺₻₼₾₿";
      String prefix = "(?:^|\\s|\\=)(?:\\*\\*)?";
      String suffix = "(?:\\*\\*)?(?:\\.|,|:|\\s|\\)|\\$|$)";
      String exprAnchored = "(?:" + prefix + expr + suffix + ")";
      String numberAnchored = "(?:" + prefix + "[" + Pattern.quote(currency).replace("\\Q", "").replace("\\E", "")
          + "]?" + number + ")";
      String either = "(?:" + exprAnchored + "|" + numberAnchored + ")";
      out.add(new Rule(Pattern.compile("(?i:final answer is):?\\s*" + either + "\\.?\\s?I hope"), 0, Kind.EXPR, true,
          false));
      out.add(new Rule(Pattern.compile("(?i:final answer.{0,100}?)\\s+is:?" + either), 50, Kind.EXPR, true, false));
      out.add(new Rule(Pattern.compile("(?i:answer):(?:.{0,100}=\\s*|.{0,50}?)" + either + "(?!\\s*=)"), 100, Kind.EXPR,
          true, false));
      out.add(new Rule(Pattern.compile("(?i:answer)(?:.{0,100}=\\s*|.{0,50}?)" + either + "(?!\\s*=)"), 200, Kind.EXPR,
          true, false));
      out.add(new Rule(Pattern.compile(exprAnchored), 300, Kind.EXPR, false, false));
      out.add(new Rule(Pattern.compile(numberAnchored), 300, Kind.EXPR, false, false));
    }

    /** The latex group(s) of a match: one candidate, or one list candidate when several were joined by "and". */
    static List<Candidate> latexCandidates(Matcher m) {
      List<String> parts = new ArrayList<>();
      boolean percent = false;
      for (String prefix : PREFIXES) {
        for (String g : LATEX_GROUPS) {
          String v = group(m, prefix + g);
          if (v != null) {
            // a \boxed{} inside: its content is the answer (every box, joined, for a list of boxes)
            String text = g.equals("latexBoxed") ? lastBoxedOrAll(v) : v.contains("\\boxed") ? allBoxed(v) : v;
            parts.add(text);
            percent |= group(m, prefix + "percent") != null;
            break;
          }
        }
      }
      if (parts.isEmpty()) {
        return List.of();
      }
      String joined = parts.size() == 1 ? parts.get(0) : String.join(",", parts);
      return List.of(new Candidate(joined, Kind.LATEX, percent && parts.size() == 1));
    }

    private static String allBoxed(String v) {
      List<String> boxes = new ArrayList<>();
      int from = 0;
      while (true) {
        int at = v.indexOf("\\boxed", from);
        if (at < 0) {
          break;
        }
        String b = lastBoxed(v.substring(0, nextBoxEnd(v, at)));
        if (b == null) {
          break;
        }
        boxes.add(b);
        from = at + 6;
      }
      return boxes.isEmpty() ? v : String.join(",", boxes);
    }

    /** The index just past the \boxed{...} starting at {@code at} (or the end of the text). */
    private static int nextBoxEnd(String v, int at) {
      int i = v.indexOf('{', at);
      if (i < 0) {
        return v.length();
      }
      int depth = 0;
      for (int j = i; j < v.length(); j++) {
        char c = v.charAt(j);
        if (c == '{') {
          depth++;
        } else if (c == '}' && --depth == 0) {
          return j + 1;
        }
      }
      return v.length();
    }

    private static String lastBoxedOrAll(String v) {
      String b = lastBoxed(v);
      return b != null ? b : v;
    }

    static List<Candidate> exprCandidates(Matcher m) {
      String integer = null;
      String decimal = null;
      for (String g : new String[] {"integer1", "integer2", "integer3"}) {
        if (integer == null) {
          integer = group(m, g);
        }
      }
      for (String g : new String[] {"decimal1", "decimal2", "decimal3"}) {
        if (decimal == null) {
          decimal = group(m, g);
        }
      }
      boolean percent = group(m, "percent") != null;
      if (integer != null || decimal != null) {
        String i = integer == null ? "" : integer.replace(",", "").replace(" ", "");
        boolean negative = i.startsWith("-");
        i = (negative ? i.substring(1) : i).replaceFirst("^0+", "");
        if (i.isEmpty()) {
          i = "0";
        }
        String d = decimal == null ? "" : decimal.replace(",", ".");
        return List.of(new Candidate((negative ? "-" : "") + i + d, Kind.EXPR, percent));
      }
      String e = group(m, "expr");
      return e == null ? List.of() : List.of(new Candidate(e.replace("\n", " ").trim(), Kind.EXPR, false));
    }

    private static String group(Matcher m, String name) {
      try {
        return m.group(name);
      } catch (IllegalArgumentException e) {
        return null; // this pattern has no such group
      }
    }
  }

  /** A gold answer may be a whole solution: its answer found the same way (else the whole text). */
  public static String goldAnswer(String gold) {
    if (gold == null) {
      return null;
    }
    String boxed = lastBoxed(gold);
    if (boxed != null) {
      return boxed;
    }
    String g = gsm8k(gold);
    return g != null ? g.trim() : gold.trim();
  }
}
