package io.grpo4j.trainer.config;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import io.grpo4j.datasets.config.ConfigException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * YAML in and out, and {@code --set a.b=c} overrides. Relative paths inside a config (model, dataset.path, ...)
 * are taken as written: from the directory the command runs in.
 */
public final class ConfigFiles {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()
      .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER).enable(YAMLGenerator.Feature.MINIMIZE_QUOTES));

  private ConfigFiles() {}

  @SuppressWarnings("unchecked")
  public static Map<String, Object> read(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new ConfigException(file + ": config file not found");
    }
    Object o;
    try {
      o = YAML.readValue(file.toFile(), Object.class);
    } catch (IOException e) {
      throw new ConfigException(file + ": not valid YAML: " + e.getMessage().split("\n")[0]);
    }
    if (o == null) {
      return new LinkedHashMap<>();
    }
    if (!(o instanceof Map)) {
      throw new ConfigException(file + ": the top level must be a mapping of keys");
    }
    return (Map<String, Object>) o;
  }

  /** Applies {@code key.path=value}; the value is parsed as YAML (numbers, booleans, lists stay typed). */
  @SuppressWarnings("unchecked")
  public static void set(Map<String, Object> root, String assignment) {
    int eq = assignment.indexOf('=');
    if (eq <= 0) {
      throw new ConfigException("--set " + assignment + ": expected key.path=value");
    }
    String[] path = assignment.substring(0, eq).trim().split("\\.");
    Object value;
    try {
      value = YAML.readValue(assignment.substring(eq + 1), Object.class);
    } catch (IOException e) {
      value = assignment.substring(eq + 1);
    }
    Map<String, Object> m = root;
    for (int i = 0; i < path.length - 1; i++) {
      Object next = m.get(path[i]);
      if (next == null) {
        next = new LinkedHashMap<String, Object>();
        m.put(path[i], next);
      } else if (!(next instanceof Map)) {
        throw new ConfigException("--set " + assignment + ": " + String.join(".", List.of(path).subList(0, i + 1))
            + " is not a mapping");
      } else {
        next = new LinkedHashMap<>((Map<String, Object>) next);
        m.put(path[i], next);
      }
      m = (Map<String, Object>) next;
    }
    m.put(path[path.length - 1], value);
  }

  public static void write(Path file, Map<String, Object> config) throws IOException {
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    YAML.writeValue(tmp.toFile(), config);
    io.grpo4j.trainer.model.AtomicFiles.move(tmp, file);
  }

  public static String toYaml(Object o) throws IOException {
    return YAML.writeValueAsString(o);
  }
}
