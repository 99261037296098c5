package io.grpo4j.trainer.serve;

import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.util.Arrays;
import java.util.List;

/**
 * Stop strings for one completion: after every token the tail of the decoded text is searched, so a stop string
 * split over several tokens is still found, at the cost of decoding a short window rather than the whole text.
 */
final class StopStrings {
  private final HfTokenizer tokenizer;
  private final List<String> stops;
  private final int window; // tokens decoded per check; a token is at least one byte, so this covers every stop
  private long[] ids = new long[32];
  private int n;

  StopStrings(HfTokenizer tokenizer, List<String> stops) {
    this.tokenizer = tokenizer;
    this.stops = stops;
    this.window = stops.stream().mapToInt(s -> s.getBytes(java.nio.charset.StandardCharsets.UTF_8).length).max()
        .orElse(0) + 4;
  }

  /** Adds a token; true when the text now contains a stop string. */
  boolean accept(long token) {
    if (n == ids.length) {
      ids = Arrays.copyOf(ids, n * 2);
    }
    ids[n++] = token;
    String tail = tokenizer.decode(Arrays.copyOfRange(ids, Math.max(0, n - window), n), false);
    for (String s : stops) {
      if (tail.contains(s)) {
        return true;
      }
    }
    return false;
  }

  /** The text up to (and with {@code keep}, including) the earliest stop string; unchanged when none occurs. */
  static String truncate(String text, List<String> stops, boolean keep) {
    int best = -1;
    String hit = null;
    for (String s : stops) {
      int i = text.indexOf(s);
      if (i >= 0 && (best < 0 || i < best)) {
        best = i;
        hit = s;
      }
    }
    if (best < 0) {
      return text;
    }
    return keep ? text.substring(0, best + hit.length()) : text.substring(0, best);
  }
}
