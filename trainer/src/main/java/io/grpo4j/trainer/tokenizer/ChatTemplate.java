package io.grpo4j.trainer.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face {@code chat_template} (Jinja) rendered with Jinjava, configured like transformers' sandboxed
 * environment (trim_blocks, lstrip_blocks). Hub templates use Python string methods and slices
 * ({@code content.startswith(...)}, {@code messages[::-1]}); {@link PyishTemplate} rewrites those few idioms into
 * what Jinjava evaluates, so the real Qwen3 and DeepSeek templates render to the same text as transformers.
 */
public final class ChatTemplate {
  private final String source;
  private final String template;
  private final Jinjava jinja;
  private final String bosToken;
  private final String eosToken;

  public ChatTemplate(String source, String bosToken, String eosToken) {
    this.source = source;
    this.template = PyishTemplate.rewrite(source);
    this.bosToken = bosToken == null ? "" : bosToken;
    this.eosToken = eosToken == null ? "" : eosToken;
    JinjavaConfig cfg = JinjavaConfig.newBuilder()
        .withTrimBlocks(true)
        .withLstripBlocks(true)
        .withFailOnUnknownTokens(false)
        .build();
    this.jinja = new Jinjava(cfg);
    PyishTemplate.register(jinja);
  }

  public String source() {
    return source;
  }

  /** A chat message: role ("system", "user", "assistant", ...) and content. */
  public record Message(String role, String content) {}

  public String render(List<Message> messages, boolean addGenerationPrompt) {
    return render(messages, addGenerationPrompt, Map.of());
  }

  /** Renders the conversation; {@code extra} adds template variables (e.g. enable_thinking). */
  public String render(List<Message> messages, boolean addGenerationPrompt, Map<String, Object> extra) {
    List<Map<String, Object>> msgs = new ArrayList<>();
    for (Message m : messages) {
      Map<String, Object> mm = new LinkedHashMap<>();
      mm.put("role", m.role());
      mm.put("content", m.content());
      msgs.add(mm);
    }
    Map<String, Object> ctx = new HashMap<>(extra);
    ctx.put("messages", msgs);
    ctx.put("add_generation_prompt", addGenerationPrompt);
    ctx.put("bos_token", bosToken);
    ctx.put("eos_token", eosToken);
    RenderResult r = jinja.renderForResult(template, ctx);
    List<TemplateError> fatal = r.getErrors().stream()
        .filter(e -> e.getSeverity() == TemplateError.ErrorType.FATAL)
        .toList();
    if (!fatal.isEmpty()) {
      TemplateError e = fatal.get(0);
      throw new IllegalArgumentException("chat_template failed to render at line " + e.getLineno() + ": "
          + e.getMessage());
    }
    return r.getOutput();
  }
}
