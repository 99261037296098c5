package io.grpo4j.datasets;

import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.rewards.ChatMessage;
import io.grpo4j.rewards.math.AnswerExtractor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which columns hold the prompt (or chat messages), the gold answer and the tests. Each takes a list of candidate
 * column names, the first present wins. Presets cover the common shapes: gsm8k (question / "#### 42" answers),
 * math (problem / \boxed{} inside a solution), messages (chat rows), code_io (question / input-output tests).
 *
 * @param answerFormat raw | gsm8k (text after ####) | boxed (last \boxed{}) | auto (boxed, then ####, then raw)
 */
public record FieldMapping(
    List<String> prompt, List<String> messages, List<String> answer, String answerFormat, List<String> tests) {

  public static FieldMapping preset(String name) {
    return switch (name) {
      case "none", "default" -> new FieldMapping(List.of("prompt", "question", "problem"), List.of("messages"),
          List.of("answer", "solution"), "auto", List.of("tests", "input_output"));
      case "gsm8k" -> new FieldMapping(List.of("question"), List.of(), List.of("answer"), "gsm8k", List.of());
      case "math" -> new FieldMapping(List.of("problem"), List.of(), List.of("answer", "solution"), "auto", List.of());
      case "messages" -> new FieldMapping(List.of(), List.of("messages", "conversations"), List.of("answer"), "auto",
          List.of());
      case "code_io" -> new FieldMapping(List.of("question", "prompt", "problem"), List.of(), List.of(), "raw",
          List.of("tests", "input_output"));
      default -> throw new ConfigException("preset \"" + name + "\" is not one of none | gsm8k | math | messages |"
          + " code_io");
    };
  }

  /** The preset, with any of prompt / messages / answer / answer_format / tests overridden. */
  public static FieldMapping from(String preset, ConfigMap fields) {
    FieldMapping p = preset(preset);
    FieldMapping m = new FieldMapping(
        fields.strings("prompt", p.prompt()),
        fields.strings("messages", p.messages()),
        fields.strings("answer", p.answer()),
        fields.oneOf("answer_format", p.answerFormat(), "raw", "gsm8k", "boxed", "auto"),
        fields.strings("tests", p.tests()));
    fields.finish();
    return m;
  }

  /** Maps one raw row; errors name the location and the field. */
  @SuppressWarnings("unchecked")
  public Example map(String location, Map<String, Object> row) {
    Map<String, Object> fields = new LinkedHashMap<>(row);
    String msgCol = first(messages, row);
    String promptCol = first(prompt, row);
    List<ChatMessage> msgs = null;
    String promptText = null;
    if (msgCol != null) {
      Object v = row.get(msgCol);
      if (!(v instanceof List<?> l)) {
        throw new DatasetException(location + ": field \"" + msgCol + "\" must be a list of {role, content}, got "
            + type(v));
      }
      msgs = new ArrayList<>();
      for (int i = 0; i < l.size(); i++) {
        if (!(l.get(i) instanceof Map<?, ?> m)) {
          throw new DatasetException(location + ": field \"" + msgCol + "\"[" + i + "] must be {role, content}");
        }
        Object role = m.containsKey("role") ? m.get("role") : m.get("from");
        Object content = m.containsKey("content") ? m.get("content") : m.get("value");
        if (!(role instanceof String) || !(content instanceof String)) {
          throw new DatasetException(location + ": field \"" + msgCol + "\"[" + i
              + "] needs string \"role\" and \"content\"");
        }
        msgs.add(new ChatMessage(normalizeRole((String) role), (String) content));
      }
      // a training prompt ends before the assistant's turn: a trailing assistant message is the reference answer
      if (!msgs.isEmpty() && msgs.get(msgs.size() - 1).role().equals("assistant")) {
        fields.putIfAbsent("reference", msgs.get(msgs.size() - 1).content());
        msgs.remove(msgs.size() - 1);
      }
      if (msgs.stream().noneMatch(m -> m.role().equals("user")) || msgs.stream().allMatch(m -> m.content().isBlank())) {
        throw new DatasetException(location + ": field \"" + msgCol + "\" has no non-empty user message");
      }
      fields.remove(msgCol);
    } else if (promptCol != null) {
      Object v = row.get(promptCol);
      if (!(v instanceof String s)) {
        throw new DatasetException(location + ": field \"" + promptCol + "\" must be a string, got " + type(v));
      }
      if (s.isBlank()) {
        throw new DatasetException(location + ": field \"" + promptCol + "\" is empty");
      }
      promptText = s;
      fields.remove(promptCol);
    } else {
      List<String> wanted = new ArrayList<>(prompt);
      wanted.addAll(messages);
      throw new DatasetException(location + ": missing prompt field (looked for " + wanted + "; the row has "
          + row.keySet() + ")");
    }
    String ansCol = first(answer, row);
    if (ansCol != null) {
      Object a = row.get(ansCol);
      if (a instanceof Map || a instanceof List) {
        throw new DatasetException(location + ": field \"" + ansCol + "\" must be a string or number, got " + type(a));
      }
      fields.put("answer", goldAnswer(String.valueOf(a)));
      if (!ansCol.equals("answer")) {
        fields.put(ansCol, a); // keep the full solution too
      }
    }
    String testCol = first(tests, row);
    if (testCol != null && !testCol.equals("tests")) {
      fields.put("tests", row.get(testCol));
    }
    return new Example(location, promptText, msgs, fields);
  }

  String goldAnswer(String raw) {
    return switch (answerFormat) {
      case "raw" -> raw.trim();
      case "gsm8k" -> {
        int at = raw.lastIndexOf("####");
        yield at >= 0 ? raw.substring(at + 4).trim().replace(",", "") : raw.trim();
      }
      case "boxed" -> {
        String b = AnswerExtractor.lastBoxed(raw);
        yield b != null ? b.trim() : raw.trim();
      }
      default -> AnswerExtractor.goldAnswer(raw);
    };
  }

  private static String first(List<String> candidates, Map<String, Object> row) {
    for (String c : candidates) {
      if (row.containsKey(c) && row.get(c) != null) {
        return c;
      }
    }
    return null;
  }

  private static String normalizeRole(String r) {
    return switch (r) {
      case "human" -> "user";
      case "gpt", "model" -> "assistant";
      default -> r;
    };
  }

  private static String type(Object v) {
    if (v == null) {
      return "null";
    }
    if (v instanceof Map) {
      return "an object";
    }
    if (v instanceof List) {
      return "a list";
    }
    return v instanceof String ? "a string" : v instanceof Number ? "a number " + v : v.getClass().getSimpleName();
  }
}
