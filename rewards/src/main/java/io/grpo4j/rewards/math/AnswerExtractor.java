package io.grpo4j.rewards.math;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds the final answer in a completion or a gold solution: the {@code <answer>} block, the last
 * {@code \boxed{...}} (nested braces), a GSM8K {@code #### 42} tail, or a user regex (group 1), tried in the
 * configured order. Reasoning inside {@code <think>} is ignored: an answer that appears only there does not count.
 */
public final class AnswerExtractor {
  private static final Pattern ANSWER_TAG = Pattern.compile("<answer>(.*?)</answer>", Pattern.DOTALL);
  private static final Pattern GSM8K = Pattern.compile("####\\s*([^\\n]+)");

  private final List<String> methods; // answer_tag, boxed, gsm8k, regex
  private final Pattern regex;

  public AnswerExtractor(List<String> methods, Pattern regex) {
    this.methods = methods;
    this.regex = regex;
  }

  public String extract(String text) {
    String visible = withoutThinking(text);
    for (String m : methods) {
      String got = switch (m) {
        case "answer_tag" -> answerTag(visible);
        case "boxed" -> lastBoxed(visible);
        case "gsm8k" -> gsm8k(visible);
        case "regex" -> regex == null ? null : byRegex(visible);
        default -> throw new IllegalArgumentException("unknown extraction method " + m);
      };
      if (got != null && !got.isBlank()) {
        return got.trim();
      }
    }
    return null;
  }

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
    if (last == null) {
      return null;
    }
    // an answer block may itself box its answer
    String boxed = lastBoxed(last);
    return boxed != null ? boxed : last;
  }

  /** The content of the last \boxed{...} or \fbox{...}, braces balanced; null if none. */
  public static String lastBoxed(String text) {
    int at = Math.max(text.lastIndexOf("\\boxed"), text.lastIndexOf("\\fbox"));
    if (at < 0) {
      return null;
    }
    int i = text.indexOf('{', at);
    if (i < 0) {
      // "\boxed 5"
      String rest = text.substring(at + (text.startsWith("\\boxed", at) ? 6 : 5)).trim();
      int end = 0;
      while (end < rest.length() && !Character.isWhitespace(rest.charAt(end)) && rest.charAt(end) != '$') {
        end++;
      }
      return end == 0 ? null : rest.substring(0, end);
    }
    int depth = 0;
    for (int j = i; j < text.length(); j++) {
      char c = text.charAt(j);
      if (c == '{') {
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

  /** A gold answer may be a whole solution: take its last \boxed{} or #### tail when it has one. */
  public static String goldAnswer(String gold) {
    if (gold == null) {
      return null;
    }
    String boxed = lastBoxed(gold);
    if (boxed != null) {
      return boxed;
    }
    String tail = gsm8k(gold);
    if (tail != null) {
      return tail.trim();
    }
    String tag = answerTag(gold);
    return tag != null ? tag.trim() : gold.trim();
  }
}
