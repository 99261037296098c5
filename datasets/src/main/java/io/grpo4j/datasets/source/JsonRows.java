package io.grpo4j.datasets.source;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.datasets.DatasetException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** A JSON file holding an array of objects, or {@code {"data": [...]}} (the Hugging Face datasets export). */
public final class JsonRows {
  private static final ObjectMapper JSON = new ObjectMapper();

  private JsonRows() {}

  @SuppressWarnings("unchecked")
  public static RawRows read(Path file) throws IOException {
    JsonNode root;
    try {
      root = JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new DatasetException(file + ": not valid JSON (" + e.getMessage().split("\n")[0] + ")");
    }
    JsonNode arr = root != null && root.isObject() && root.has("data") ? root.get("data") : root;
    if (arr == null || !arr.isArray()) {
      throw new DatasetException(file + ": expected a JSON array of rows or {\"data\": [...]}");
    }
    List<Map<String, Object>> rows = new ArrayList<>();
    for (int i = 0; i < arr.size(); i++) {
      JsonNode n = arr.get(i);
      if (!n.isObject()) {
        throw new DatasetException(file + ": element " + i + " is not an object: " + abbreviate(n.toString()));
      }
      rows.add(JSON.convertValue(n, Map.class));
    }
    return new InMemoryRows(file.toString(), "element", rows, 0);
  }

  static String abbreviate(String s) {
    return s.length() > 80 ? s.substring(0, 80) + "..." : s;
  }
}
