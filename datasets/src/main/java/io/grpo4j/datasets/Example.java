package io.grpo4j.datasets;

import io.grpo4j.rewards.ChatMessage;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One prompt row, ready to be formatted: either chat {@code messages} or a plain {@code prompt} text, and every
 * other column in {@code fields} ({@code answer}, {@code tests}, ...) for reward plugins.
 *
 * @param id stable identifier: "file:line" for file rows, "task:seed:index" for synthetic ones
 */
public record Example(String id, String prompt, List<ChatMessage> messages, Map<String, Object> fields) {
  public Example {
    messages = messages == null ? List.of() : List.copyOf(messages);
    fields = fields == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(fields));
    if ((prompt == null || prompt.isBlank()) && messages.isEmpty()) {
      throw new IllegalArgumentException("example " + id + " has neither a prompt nor messages");
    }
  }

  public boolean isChat() {
    return !messages.isEmpty();
  }

  /** The text a user asked: the prompt, or the last user message. Used for de-duplication and previews. */
  public String userText() {
    if (!isChat()) {
      return prompt;
    }
    for (int i = messages.size() - 1; i >= 0; i--) {
      if (messages.get(i).role().equals("user")) {
        return messages.get(i).content();
      }
    }
    return messages.get(messages.size() - 1).content();
  }

  public String answer() {
    Object a = fields.get("answer");
    return a == null ? null : a.toString();
  }
}
