package io.grpo4j.trainer.rollout;

import io.grpo4j.datasets.Example;
import io.grpo4j.datasets.PromptFormatter;
import io.grpo4j.rewards.ChatMessage;
import io.grpo4j.trainer.tokenizer.ChatTemplate;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Example -> what the model reads: the formatter's messages rendered with the model's chat template (or the
 * formatter's raw text for r1_zero), then token ids. The seam between datasets (which never see a tokenizer)
 * and the model.
 */
public final class PromptEncoder {
  private final HfTokenizer tokenizer;
  private final PromptFormatter formatter;

  public PromptEncoder(HfTokenizer tokenizer, PromptFormatter formatter) {
    if (!formatter.template().equals("r1_zero") && !formatter.template().equals("plain")
        && !tokenizer.hasChatTemplate()) {
      throw new IllegalArgumentException("prompt.template: " + formatter.template() + " renders chat messages, but"
          + " the model's tokenizer has no chat_template; use template: r1_zero (plain text) instead");
    }
    this.tokenizer = tokenizer;
    this.formatter = formatter;
  }

  /** A prompt as rendered and tokenized. */
  public record Encoded(Example example, List<ChatMessage> messages, String text, long[] ids) {}

  public Encoded encode(Example e) {
    PromptFormatter.Formatted f = formatter.format(e);
    String text;
    if (f.isChat()) {
      List<ChatTemplate.Message> msgs = new ArrayList<>();
      f.messages().forEach(m -> msgs.add(new ChatTemplate.Message(m.role(), m.content())));
      text = tokenizer.applyChatTemplate(msgs, true);
    } else {
      text = f.text();
    }
    return new Encoded(e, f.messages(), text, tokenizer.encode(text));
  }

  public int length(Example e) {
    return encode(e).ids().length;
  }

  public HfTokenizer tokenizer() {
    return tokenizer;
  }
}
