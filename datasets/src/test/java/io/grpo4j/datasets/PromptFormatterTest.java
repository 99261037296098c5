package io.grpo4j.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.rewards.ChatMessage;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PromptFormatterTest {
  static final Example Q = new Example("q", "What is 2+2?", null, Map.of("answer", "4", "topic", "sums"));

  static PromptFormatter f(Map<String, Object> y) {
    return PromptFormatter.parse(new ConfigMap("prompt", y));
  }

  @Test
  void r1ZeroIsPlainTextWithTheQuestionInside() {
    var out = f(Map.of("template", "r1_zero")).format(Q);
    assertTrue(!out.isChat());
    assertTrue(out.text().startsWith("A conversation between User and Assistant."));
    assertTrue(out.text().contains("<think> </think> and <answer> </answer> tags"));
    assertTrue(out.text().endsWith("User: What is 2+2?. Assistant:"));
  }

  @Test
  void r1ChatAddsTheSystemPromptAndFillsFields() {
    var out = f(Map.of("template", "r1_chat", "user_template", "[{topic}] {prompt}")).format(Q);
    assertEquals(List.of(new ChatMessage("system", PromptFormatter.R1_SYSTEM),
        new ChatMessage("user", "[sums] What is 2+2?")), out.messages());
  }

  @Test
  void chatRowsKeepTheirSystemMessage() {
    Example chat = new Example("c", null, List.of(new ChatMessage("system", "mine"), new ChatMessage("user", "hi")),
        Map.of());
    assertEquals("mine", f(Map.of("template", "r1_chat")).format(chat).messages().get(0).content());
  }

  @Test
  void unknownPlaceholderNamesTheRowAndItsFields() {
    var e = assertThrows(DatasetException.class, () -> f(Map.of("user_template", "{question}")).format(Q));
    assertTrue(e.getMessage().contains("{question}") && e.getMessage().contains("topic"), e.getMessage());
  }
}
