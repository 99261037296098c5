package io.grpo4j.datasets.tasks;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The last {@code <answer>...</answer>} outside the reasoning, as every task checker reads it. */
final class Answers {
  private static final Pattern ANSWER = Pattern.compile("<answer>(.*?)</answer>", Pattern.DOTALL);

  private Answers() {}

  static String last(String completion) {
    int close = completion.lastIndexOf("</think>");
    String visible = close >= 0 ? completion.substring(close + 8) : completion;
    Matcher m = ANSWER.matcher(visible);
    String last = null;
    while (m.find()) {
      last = m.group(1);
    }
    return last == null ? null : last.trim();
  }
}
