package io.grpo4j.trainer.init;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A byte-level BPE tokenizer in the GPT-2 / Qwen style, trained in Java: text is split by the GPT-2 pre-tokenizer
 * pattern, each piece's UTF-8 bytes are mapped to printable characters, and the most frequent adjacent pair is
 * merged until the vocabulary is full. The result is what Hugging Face {@code tokenizers} reads as a BPE model with
 * a ByteLevel pre-tokenizer and decoder; with no merges it is a pure byte tokenizer.
 */
public final class ByteLevelBpe {
  /** GPT-2's pre-tokenization pattern, as the ByteLevel pre-tokenizer applies it. */
  static final Pattern PRETOKENIZE = Pattern.compile(
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
  static final char[] BYTE_TO_CHAR = byteToUnicode();

  private ByteLevelBpe() {}

  /** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to code points from 256 up. */
  static char[] byteToUnicode() {
    char[] map = new char[256];
    boolean[] printable = new boolean[256];
    for (int b = '!'; b <= '~'; b++) {
      printable[b] = true;
    }
    for (int b = 0xA1; b <= 0xAC; b++) {
      printable[b] = true;
    }
    for (int b = 0xAE; b <= 0xFF; b++) {
      printable[b] = true;
    }
    int n = 0;
    for (int b = 0; b < 256; b++) {
      map[b] = printable[b] ? (char) b : (char) (256 + n++);
    }
    return map;
  }

  /** The 256 byte symbols, in byte order. */
  public static List<String> byteSymbols() {
    List<String> out = new ArrayList<>();
    for (int b = 0; b < 256; b++) {
      out.add(String.valueOf(BYTE_TO_CHAR[b]));
    }
    return out;
  }

  /** The learned merges, most frequent first; {@code merges} of them at most. */
  public static List<String[]> train(List<String> texts, int merges) {
    Map<String, Integer> words = new HashMap<>();
    for (String t : texts) {
      Matcher m = PRETOKENIZE.matcher(t);
      while (m.find()) {
        words.merge(mapBytes(m.group()), 1, Integer::sum);
      }
    }
    // each distinct word as a list of symbols, with its count
    List<List<String>> symbols = new ArrayList<>();
    List<Integer> counts = new ArrayList<>();
    words.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
      List<String> s = new ArrayList<>();
      e.getKey().codePoints().forEach(cp -> s.add(new String(Character.toChars(cp))));
      symbols.add(s);
      counts.add(e.getValue());
    });
    List<String[]> out = new ArrayList<>();
    for (int k = 0; k < merges; k++) {
      Map<String, Integer> pairs = new LinkedHashMap<>();
      for (int w = 0; w < symbols.size(); w++) {
        List<String> s = symbols.get(w);
        for (int i = 0; i + 1 < s.size(); i++) {
          pairs.merge(s.get(i) + "\u0000" + s.get(i + 1), counts.get(w), Integer::sum);
        }
      }
      String best = null;
      int bestCount = 1; // a pair seen once is not worth a token
      for (var e : pairs.entrySet()) {
        if (e.getValue() > bestCount || (e.getValue() == bestCount && best != null && e.getKey().compareTo(best) < 0)) {
          best = e.getKey();
          bestCount = e.getValue();
        }
      }
      if (best == null) {
        break;
      }
      String[] pair = best.split("\u0000", 2);
      out.add(pair);
      String merged = pair[0] + pair[1];
      for (List<String> s : symbols) {
        for (int i = 0; i + 1 < s.size(); i++) {
          if (s.get(i).equals(pair[0]) && s.get(i + 1).equals(pair[1])) {
            s.set(i, merged);
            s.remove(i + 1);
          }
        }
      }
    }
    return out;
  }

  static String mapBytes(String piece) {
    byte[] b = piece.getBytes(StandardCharsets.UTF_8);
    StringBuilder sb = new StringBuilder(b.length);
    for (byte x : b) {
      sb.append(BYTE_TO_CHAR[x & 0xff]);
    }
    return sb.toString();
  }
}
