package io.grpo4j.trainer.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The raw bytes each token stands for, read from tokenizer.json's vocabulary: GPT-2's byte-to-character map
 * undone for byte-level BPE (Qwen, Llama 3), {@code <0xNN>} byte-fallback pieces and {@code ▁} spaces for
 * SentencePiece models (Llama 2). What OpenAI's log-probs report as {@code bytes}, and how a token that is only
 * part of a UTF-8 character is shown ({@code bytes:\xe2\x80}) instead of a replacement character that several
 * tokens would share.
 */
final class TokenBytes {
  private final Map<Integer, String> pieces = new HashMap<>();
  private final boolean byteLevel;
  private final int[] unicodeToByte = new int[324]; // GPT-2's map reaches U+0143

  TokenBytes(Path tokenizerJson) throws IOException {
    JsonNode t = new ObjectMapper().readTree(tokenizerJson.toFile());
    t.path("model").path("vocab").fields().forEachRemaining(e -> pieces.put(e.getValue().asInt(), e.getKey()));
    for (JsonNode a : t.path("added_tokens")) {
      pieces.put(a.path("id").asInt(), a.path("content").asText());
    }
    byteLevel = t.path("decoder").toString().contains("\"ByteLevel\"");
    java.util.Arrays.fill(unicodeToByte, -1);
    // GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 upwards
    int n = 0;
    for (int b = 0; b < 256; b++) {
      boolean printable = b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF;
      int cp = printable ? b : 256 + n++;
      unicodeToByte[cp] = b;
    }
  }

  /** The token's bytes, or null when the vocabulary does not have it. */
  byte[] of(long id, boolean special) {
    String piece = pieces.get((int) id);
    if (piece == null) {
      return null;
    }
    if (special) {
      return piece.getBytes(StandardCharsets.UTF_8);
    }
    if (byteLevel) {
      byte[] out = new byte[piece.length()];
      for (int i = 0; i < piece.length(); i++) {
        char c = piece.charAt(i);
        if (c >= unicodeToByte.length || unicodeToByte[c] < 0) {
          return piece.getBytes(StandardCharsets.UTF_8); // an added token written as plain text
        }
        out[i] = (byte) unicodeToByte[c];
      }
      return out;
    }
    if (piece.matches("<0x[0-9A-Fa-f]{2}>")) {
      return new byte[] {(byte) Integer.parseInt(piece.substring(3, 5), 16)};
    }
    return piece.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
  }
}
