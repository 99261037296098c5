package io.grpo4j.datasets.tasks;

import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import java.util.List;
import java.util.Map;

/** The synthetic tasks by name, with their options from YAML ({@code dataset.task}) or the command line. */
public final class Tasks {
  public static final List<String> NAMES = List.of("arithmetic", "countdown", "sort");

  private Tasks() {}

  /** {@code options} may also hold name / n / seed / eval_n (read by the caller); other keys are the task's. */
  public static Task create(String name, ConfigMap o) {
    o.string("name", null);
    o.raw("n");
    o.raw("seed");
    Task t;
    try {
      t = switch (name) {
        case "arithmetic" -> new ArithmeticTask(o.integer("digits", 2, 1, 9), o.integer("terms", 2, 2, 8),
            o.string("ops", "+-*"), o.bool("curriculum", false), o.oneOf("solution", "direct", "direct", "columns"));
        case "countdown" -> new CountdownTask(o.integer("min_numbers", 3, 2, 6), o.integer("max_numbers", 4, 2, 6),
            o.integer("max_value", 99, 2, 1_000_000), o.integer("max_target", 1000, 1, Integer.MAX_VALUE));
        case "sort" -> new SortTask(o.integer("min_length", 3, 2, 50), o.integer("max_length", 6, 2, 50),
            o.integer("max_value", 99, 2, Integer.MAX_VALUE));
        default -> throw new ConfigException(o.key("name") + ": unknown task \"" + name + "\"; available: "
            + String.join(", ", NAMES));
      };
    } catch (IllegalArgumentException e) {
      if (e instanceof ConfigException) {
        throw e;
      }
      throw new ConfigException(o.key("name") + ": " + e.getMessage());
    }
    o.finish();
    return t;
  }

  public static Task create(String name, Map<String, Object> options) {
    return create(name, new ConfigMap("task", options));
  }

  /**
   * Writes examples as an ordinary JSONL dataset (prompt, the task's fields, and with {@code solutions} the worked
   * R1-format completion as "solution"), atomically.
   */
  public static void writeJsonl(Task task, List<io.grpo4j.datasets.Example> rows, java.nio.file.Path file,
      boolean solutions) throws java.io.IOException {
    com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
    java.nio.file.Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    try (java.io.BufferedWriter w = java.nio.file.Files.newBufferedWriter(tmp,
        java.nio.charset.StandardCharsets.UTF_8)) {
      for (io.grpo4j.datasets.Example e : rows) {
        Map<String, Object> row = new java.util.LinkedHashMap<>();
        row.put("prompt", e.prompt());
        row.putAll(e.fields());
        if (solutions) {
          row.put("solution", task.solution(e));
        }
        w.write(json.writeValueAsString(row));
        w.write('\n');
      }
    }
    java.nio.file.Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
        java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }
}
