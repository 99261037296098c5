package io.grpo4j.rewards;

/** One chat message: {@code role} is "system", "user", "assistant" or "tool". */
public record ChatMessage(String role, String content) {
  public ChatMessage {
    if (role == null || role.isBlank()) {
      throw new IllegalArgumentException("a chat message needs a role");
    }
    content = content == null ? "" : content;
  }
}
