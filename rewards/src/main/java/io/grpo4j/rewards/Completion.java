package io.grpo4j.rewards;

import java.util.List;
import java.util.Map;

/**
 * One sampled completion, as a reward function sees it.
 *
 * @param messages the prompt as chat messages (empty for a plain-text prompt)
 * @param prompt the prompt text exactly as the model saw it (after the chat template)
 * @param text the completion text, with special tokens such as {@code <think>} kept
 * @param tokenCount completion length in tokens
 * @param finishReason "stop" (ended with an end-of-sequence token) or "length" (hit the token budget)
 * @param fields the dataset row's other columns: {@code answer}, {@code tests}, anything else it had
 */
public record Completion(
    List<ChatMessage> messages,
    String prompt,
    String text,
    int tokenCount,
    String finishReason,
    Map<String, Object> fields) {

  public Completion {
    messages = messages == null ? List.of() : List.copyOf(messages);
    prompt = prompt == null ? "" : prompt;
    text = text == null ? "" : text;
    finishReason = finishReason == null ? "stop" : finishReason;
    fields = fields == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(fields));
  }

  /** A completion with just a text and row fields (handy in tests and scripts). */
  public static Completion of(String text, Map<String, Object> fields) {
    return new Completion(List.of(), "", text, 0, "stop", fields);
  }

  /** The field as a string, or null when the row has no such field. */
  public String field(String name) {
    Object v = fields.get(name);
    return v == null ? null : v.toString();
  }

  public boolean truncated() {
    return "length".equals(finishReason);
  }
}
