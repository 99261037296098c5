package io.grpo4j.trainer.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.Fixtures;
import java.util.List;
import org.junit.jupiter.api.Test;

class HfTokenizerTest {
  @Test
  void encodesTheFixturePromptsLikeTransformers() throws Exception {
    JsonNode cases = new ObjectMapper().readTree(Fixtures.root().resolve("cases.json").toFile());
    try (HfTokenizer tok = HfTokenizer.load(Fixtures.model("tiny-qwen2"))) {
      for (int i = 0; i < cases.get("prompts").size(); i++) {
        JsonNode want = cases.get("prompt_ids").get(i);
        long[] ids = new long[want.size()];
        for (int j = 0; j < ids.length; j++) {
          ids[j] = want.get(j).asLong();
        }
        String text = cases.get("prompts").get(i).asText();
        assertArrayEquals(ids, tok.encode(text), "prompt " + i);
        assertEquals(text, tok.decode(ids), "decode keeps special tokens, prompt " + i);
      }
      assertEquals(2, tok.tokenId("<|im_end|>"));
      assertArrayEquals(new int[] {2}, tok.stopTokenIds());
      assertEquals(0, tok.padTokenId());
    }
  }

  @Test
  void fixtureChatTemplateRendersChatMl() throws Exception {
    JsonNode cases = new ObjectMapper().readTree(Fixtures.root().resolve("cases.json").toFile());
    try (HfTokenizer tok = HfTokenizer.load(Fixtures.model("tiny-qwen2"))) {
      String text = tok.applyChatTemplate(List.of(new ChatTemplate.Message("user", "what is 12 + 30 ?")), true);
      assertEquals(cases.get("prompts").get(0).asText(), text);
    }
  }

  @Test
  void r1TagsSurviveDecoding() throws Exception {
    try (HfTokenizer tok = HfTokenizer.load(Fixtures.model("tiny-qwen2"))) {
      String s = "<think> 7 + 8 = 15 </think> <answer>15</answer>";
      assertTrue(tok.isSpecial(tok.tokenId("<think>")) || tok.tokenId("<think>") >= 0);
      assertEquals(s, tok.decode(tok.encode(s)));
    }
  }
}
