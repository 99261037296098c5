package io.grpo4j.trainer.serve;

import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.util.Arrays;
import java.util.List;

/**
 * A completion's text as it streams, so that the pieces sent add up to exactly the text a non-streamed request
 * returns. Tokens are detokenised incrementally as vLLM does (decode from a few tokens back and keep what the new
 * token added, so byte-level pieces of one character wait until the character is whole); with stop strings the
 * last {@code longest stop - 1} characters are held back, since they might begin a stop string that is cut off.
 */
final class TextStream {
  private final HfTokenizer tokenizer;
  private final boolean skipSpecial;
  private final List<String> stops;
  private final boolean keepStop;
  private final int holdBack;
  private long[] ids = new long[64];
  private int n;
  private int prefixOffset;
  private int readOffset;
  private final StringBuilder text = new StringBuilder(); // decoded so far
  private int sent; // characters of text already sent

  TextStream(HfTokenizer tokenizer, boolean skipSpecial, List<String> stops, boolean keepStop) {
    this.tokenizer = tokenizer;
    this.skipSpecial = skipSpecial;
    this.stops = stops;
    this.keepStop = keepStop;
    this.holdBack = stops.stream().mapToInt(String::length).max().orElse(1) - 1;
  }

  /** Adds a generated token (not a final stop token); returns the text that can be sent now, maybe "". */
  String accept(long token) {
    if (n == ids.length) {
      ids = Arrays.copyOf(ids, n * 2);
    }
    ids[n++] = token;
    String prefix = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, readOffset), skipSpecial);
    String full = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, n), skipSpecial);
    if (full.length() > prefix.length() && !full.endsWith("\uFFFD") && full.startsWith(prefix)) {
      text.append(full, prefix.length(), full.length());
      prefixOffset = readOffset;
      readOffset = n;
    }
    int ready = text.length();
    if (!stops.isEmpty()) {
      String cut = StopStrings.truncate(text.toString(), stops, keepStop);
      ready = cut.length() < text.length() ? cut.length() : Math.max(sent, text.length() - holdBack);
    }
    if (ready <= sent) {
      return "";
    }
    String out = text.substring(sent, ready);
    sent = ready;
    return out;
  }

  /** The rest of the final text; empty if what was sent already differs from it (never seen: see the test). */
  String finish(String finalText) {
    String already = text.substring(0, sent);
    if (!finalText.startsWith(already)) {
      System.err.println("grpo serve: streamed text diverged from the final text; sending nothing more");
      return "";
    }
    sent = finalText.length();
    return finalText.substring(already.length());
  }
}
