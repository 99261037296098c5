package io.grpo4j.datasets;

import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.rewards.ChatMessage;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Builds what the model is prompted with. Chat templates ({@code r1_chat}, {@code chat}) produce messages that the
 * trainer renders with the model's own chat template; {@code r1_zero} is the R1-Zero paper's plain-text template
 * for base models and is used as text, untouched by any chat template.
 *
 * <p>A user template fills {@code {field}} placeholders from the example ({@code {prompt}} is the row's prompt,
 * any other name a column of the row); a chat row's messages are kept as they are, with the system prompt added
 * in front when it has none.
 */
public final class PromptFormatter {
  /** The R1-Zero template, as in the DeepSeek-R1 paper (Table 1). */
  public static final String R1_ZERO = "A conversation between User and Assistant. The user asks a question, and the"
      + " Assistant solves it. The assistant first thinks about the reasoning process in the mind and then provides"
      + " the user with the answer. The reasoning process and answer are enclosed within <think> </think> and"
      + " <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here"
      + " </answer>. User: {prompt}. Assistant:";

  /** The same instruction as a system prompt, for chat models. */
  public static final String R1_SYSTEM = "You are a helpful assistant. You first think about the reasoning process"
      + " in your mind and then provide the user with the answer. The reasoning process and answer are enclosed"
      + " within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here"
      + " </think><answer> answer here </answer>.";

  private static final Pattern PLACEHOLDER = Pattern.compile("\\{([A-Za-z_][A-Za-z0-9_]*)\\}");

  /** What to feed the model: chat messages (to render with the chat template), or raw text. */
  public record Formatted(List<ChatMessage> messages, String text) {
    public boolean isChat() {
      return text == null;
    }
  }

  private final String template; // r1_zero | r1_chat | chat | plain
  private final String systemPrompt;
  private final String userTemplate;

  public PromptFormatter(String template, String systemPrompt, String userTemplate) {
    this.template = template;
    this.systemPrompt = systemPrompt;
    this.userTemplate = userTemplate == null ? "{prompt}" : userTemplate;
  }

  /** {@code prompt:} section: template (r1_zero | r1_chat | chat | plain), system_prompt, user_template. */
  public static PromptFormatter parse(ConfigMap c) {
    String t = c.oneOf("template", "r1_chat", "r1_zero", "r1_chat", "chat", "plain");
    String sys = c.string("system_prompt", t.equals("r1_chat") ? R1_SYSTEM : null);
    String user = c.string("user_template", "{prompt}");
    if (!user.contains("{")) {
      throw new ConfigException(c.key("user_template") + ": has no {field} placeholder, so every prompt would be the"
          + " same text");
    }
    c.finish();
    return new PromptFormatter(t, sys, user);
  }

  public String template() {
    return template;
  }

  public Formatted format(Example e) {
    if (template.equals("r1_zero") || template.equals("plain")) {
      String user = e.isChat() ? e.userText() : fill(userTemplate, e);
      return new Formatted(List.of(), template.equals("r1_zero") ? R1_ZERO.replace("{prompt}", user) : user);
    }
    List<ChatMessage> msgs = new ArrayList<>();
    if (e.isChat()) {
      if (systemPrompt != null && !e.messages().get(0).role().equals("system")) {
        msgs.add(new ChatMessage("system", systemPrompt));
      }
      msgs.addAll(e.messages());
    } else {
      if (systemPrompt != null && !systemPrompt.isBlank()) {
        msgs.add(new ChatMessage("system", systemPrompt));
      }
      msgs.add(new ChatMessage("user", fill(userTemplate, e)));
    }
    return new Formatted(msgs, null);
  }

  static String fill(String tpl, Example e) {
    Matcher m = PLACEHOLDER.matcher(tpl);
    StringBuilder sb = new StringBuilder();
    while (m.find()) {
      String name = m.group(1);
      Object v = name.equals("prompt") ? e.prompt() : e.fields().get(name);
      if (v == null) {
        throw new DatasetException(e.id() + ": user_template uses {" + name + "} but the row has no such field"
            + " (fields: " + fieldsOf(e) + ")");
      }
      m.appendReplacement(sb, Matcher.quoteReplacement(v.toString()));
    }
    m.appendTail(sb);
    return sb.toString();
  }

  private static String fieldsOf(Example e) {
    List<String> names = new ArrayList<>();
    names.add("prompt");
    for (Map.Entry<String, Object> f : e.fields().entrySet()) {
      names.add(f.getKey());
    }
    return String.join(", ", names);
  }
}
