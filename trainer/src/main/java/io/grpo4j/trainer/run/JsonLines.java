package io.grpo4j.trainer.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * An append-only JSON-lines log (metrics.jsonl, samples.jsonl, eval.jsonl). Each line is flushed as written, so a
 * killed run keeps every finished step; a resumed run first cuts the file back to the checkpoint's step (and drops
 * a torn last line), then appends, so no step appears twice.
 */
public final class JsonLines implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final Path file;
  private BufferedWriter out;

  public JsonLines(Path file) throws IOException {
    this.file = file;
    this.out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
        StandardOpenOption.APPEND);
  }

  private JsonLines() {
    this.file = null;
    this.out = null;
  }

  /** A log that writes nothing (data-parallel ranks other than 0: rank 0 writes the run's files). */
  public static JsonLines discard() {
    return new JsonLines();
  }

  public synchronized void write(Object row) throws IOException {
    if (out == null) {
      return;
    }
    out.write(JSON.writeValueAsString(row));
    out.write('\n');
    out.flush();
  }

  /** Keeps only complete lines whose "step" is at most {@code step}. */
  public static void truncateAfter(Path file, long step) throws IOException {
    if (!Files.exists(file)) {
      return;
    }
    List<String> keep = new ArrayList<>();
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      try {
        JsonNode n = JSON.readTree(line);
        if (n != null && n.has("step") && n.get("step").asLong() <= step) {
          keep.add(line);
        }
      } catch (IOException e) {
        // a line torn by a kill mid-write: drop it
      }
    }
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.write(tmp, keep, StandardCharsets.UTF_8);
    io.grpo4j.trainer.model.AtomicFiles.move(tmp, file);
  }

  public static List<JsonNode> readAll(Path file) throws IOException {
    List<JsonNode> rows = new ArrayList<>();
    if (!Files.exists(file)) {
      return rows;
    }
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      if (!line.isBlank()) {
        try {
          rows.add(JSON.readTree(line));
        } catch (IOException e) {
          // torn line
        }
      }
    }
    return rows;
  }

  public Path file() {
    return file;
  }

  @Override
  public synchronized void close() throws IOException {
    if (out != null) {
      out.close();
    }
  }
}
