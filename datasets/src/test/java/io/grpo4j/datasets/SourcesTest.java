package io.grpo4j.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each format with real-shaped rows, the presets, and one clear message per kind of bad row. */
class SourcesTest {
  @TempDir Path tmp;

  static DatasetSpec spec(Map<String, Object> yaml) {
    return DatasetSpec.parse(new ConfigMap("dataset", yaml));
  }

  Path write(String name, String content) throws Exception {
    Path p = tmp.resolve(name);
    Files.writeString(p, content);
    return p;
  }

  @Test
  void gsm8kJsonl() throws Exception {
    Path f = write("gsm8k.jsonl", String.join("\n",
        "{\"question\": \"Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?\", \"answer\": \"Natalia sold 48/2 = <<48/2=24>>24 clips in May.\\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\\n#### 72\"}",
        "",
        "{\"question\": \"Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?\", \"answer\": \"Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\\n#### 1,000\"}",
        ""));
    Dataset d = Dataset.open(spec(Map.of("path", f.toString(), "preset", "gsm8k")));
    assertEquals(2, d.train().size());
    Example e = d.train().get(0);
    assertTrue(e.prompt().startsWith("Natalia"));
    assertEquals("72", e.answer());
    assertEquals("1000", d.train().get(1).answer(), "#### tail, thousands separator dropped");
    assertEquals(f + ":3", d.train().get(1).id(), "ids carry file and line (blank lines count)");
  }

  @Test
  void mathJsonWithDataKeyAndBoxedSolutions() throws Exception {
    Path f = write("math.json", "{\"data\": [{\"problem\": \"What is $\\\\frac{1}{2} + \\\\frac{1}{4}$?\","
        + " \"solution\": \"We add: $\\\\frac{1}{2}+\\\\frac{1}{4} = \\\\boxed{\\\\frac{3}{4}}$.\", \"level\": \"Level 1\","
        + " \"type\": \"Prealgebra\"}]}");
    Example e = Dataset.open(spec(Map.of("path", f.toString(), "preset", "math"))).train().get(0);
    assertEquals("\\frac{3}{4}", e.answer());
    assertEquals("Level 1", e.fields().get("level"), "other columns are kept for reward plugins");
    assertTrue(e.fields().get("solution").toString().contains("boxed"), "the full solution is kept too");
  }

  @Test
  void chatMessagesJsonl() throws Exception {
    Path f = write("chat.jsonl", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
        + " {\"role\": \"user\", \"content\": \"What is 2+2?\"}, {\"role\": \"assistant\", \"content\": \"4\"}],"
        + " \"answer\": \"4\"}\n");
    Example e = Dataset.open(spec(Map.of("path", f.toString(), "preset", "messages"))).train().get(0);
    assertEquals(2, e.messages().size(), "the trailing assistant turn is the reference, not the prompt");
    assertEquals("4", e.fields().get("reference"));
    assertEquals("What is 2+2?", e.userText());
  }

  @Test
  void codeCsvWithQuotedMultilineFields() throws Exception {
    Path f = write("code.csv", "question,tests\n\"Print the sum of two numbers,\nread from stdin.\","
        + "\"[{\"\"input\"\": \"\"1 2\"\", \"\"output\"\": \"\"3\"\"}]\"\n");
    Example e = Dataset.open(spec(Map.of("path", f.toString(), "preset", "code_io"))).train().get(0);
    assertTrue(e.prompt().contains("\n"));
    assertTrue(e.fields().get("tests").toString().contains("\"input\""));
  }

  @Test
  void tsv() throws Exception {
    Path f = write("rows.tsv", "prompt\tanswer\nAdd 2 and 3\t5\n");
    Example e = Dataset.open(spec(Map.of("path", f.toString()))).train().get(0);
    assertEquals("5", e.answer());
  }

  @Test
  void parquetWrittenByPandasAndPyarrow() throws Exception {
    Path f = Path.of(getClass().getResource("/data/code_io.parquet").toURI());
    Dataset d = Dataset.open(spec(Map.of("path", f.toString(), "preset", "code_io")));
    assertEquals(3, d.train().size());
    Example e = d.train().get(0);
    assertEquals("Read two integers and print their sum.", e.prompt());
    assertEquals(1L, e.fields().get("difficulty"));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> tests = (List<Map<String, Object>>) e.fields().get("tests");
    assertEquals(Map.of("input", "1 2\n", "output", "3\n"), tests.get(0));
    assertEquals(List.of("math", "io"), e.fields().get("tags"));
    assertNull(d.train().get(1).fields().get("score"), "a null cell stays null");
    assertEquals(List.of(), d.train().get(2).fields().get("tags"));
  }

  @Test
  void folderAndGlobReadAsOneDataset() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("shards"));
    Files.writeString(dir.resolve("train-00000.jsonl"), "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n");
    Files.writeString(dir.resolve("train-00001.jsonl"), "{\"prompt\": \"c\"}\n");
    Files.writeString(dir.resolve("README.md"), "not data");
    assertEquals(3, Dataset.open(spec(Map.of("path", dir.toString()))).train().size());
    Dataset g = Dataset.open(spec(Map.of("path", dir + "/train-*.jsonl")));
    assertEquals(3, g.train().size());
    assertEquals("c", g.train().get(2).prompt(), "shards in name order");
  }

  // ---- bad rows: one clear message naming file, line and field ----

  String error(String content, Map<String, Object> extra) throws Exception {
    Path f = write("bad.jsonl", content);
    Map<String, Object> y = new java.util.HashMap<>(extra);
    y.put("path", f.toString());
    Dataset d = Dataset.open(spec(y));
    DatasetException e = assertThrows(DatasetException.class, () -> {
      for (int i = 0; i < d.train().size(); i++) {
        d.train().get(i);
      }
    });
    assertTrue(e.getMessage().contains("bad.jsonl:"), e.getMessage());
    return e.getMessage();
  }

  @Test
  void malformedLine() throws Exception {
    String m = error("{\"prompt\": \"ok\"}\n{\"prompt\": \"broken\"\n", Map.of());
    assertTrue(m.contains("bad.jsonl:2") && m.contains("malformed JSON"), m);
  }

  @Test
  void missingField() throws Exception {
    String m = error("{\"prompt\": \"ok\"}\n{\"text\": \"no prompt here\"}\n", Map.of());
    assertTrue(m.contains("bad.jsonl:2") && m.contains("missing prompt field") && m.contains("text"), m);
  }

  @Test
  void wrongType() throws Exception {
    String m = error("{\"prompt\": 42}\n", Map.of());
    assertTrue(m.contains("bad.jsonl:1") && m.contains("\"prompt\"") && m.contains("number"), m);
  }

  @Test
  void emptyPrompt() throws Exception {
    String m = error("{\"prompt\": \"   \"}\n", Map.of());
    assertTrue(m.contains("bad.jsonl:1") && m.contains("empty"), m);
  }

  @Test
  void badMessages() throws Exception {
    String m = error("{\"messages\": [{\"role\": \"user\"}]}\n", Map.of("preset", "messages"));
    assertTrue(m.contains("bad.jsonl:1") && m.contains("messages") && m.contains("content"), m);
  }

  @Test
  void skipModeCountsBadRows() throws Exception {
    Path f = write("mixed.jsonl", "{\"prompt\": \"a\"}\n{oops\n{\"prompt\": \"\"}\n{\"prompt\": \"b\"}\n");
    Dataset d = Dataset.open(spec(Map.of("path", f.toString(), "on_bad_row", "skip")));
    assertEquals(2, d.train().size());
    assertEquals(2, d.badRowsDropped());
    assertTrue(d.describe().contains("2 bad rows skipped"));
  }

  @Test
  void dedupeAndLimit() throws Exception {
    Path f = write("dups.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": \"a \"}\n{\"prompt\": \"b\"}\n{\"prompt\": \"c\"}\n");
    Dataset d = Dataset.open(spec(Map.of("path", f.toString(), "dedupe", true, "limit", 2)));
    assertEquals(1, d.duplicatesDropped());
    assertEquals(2, d.train().size());
  }

  @Test
  void configErrorsNameTheKey() {
    var e = assertThrows(ConfigException.class, () -> spec(Map.of("path", "x.jsonl", "shufle", true)));
    assertTrue(e.getMessage().contains("dataset.shufle") && e.getMessage().contains("shuffle"), e.getMessage());
    var e2 = assertThrows(ConfigException.class, () -> spec(Map.of("path", "x.jsonl", "eval_fraction", 2)));
    assertTrue(e2.getMessage().contains("dataset.eval_fraction"), e2.getMessage());
    var e3 = assertThrows(ConfigException.class, () -> spec(Map.of("path", "x", "preset", "gsm9k")));
    assertTrue(e3.getMessage().contains("gsm9k") && e3.getMessage().contains("gsm8k"), e3.getMessage());
  }
}
