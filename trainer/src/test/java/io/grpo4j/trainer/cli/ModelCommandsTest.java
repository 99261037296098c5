package io.grpo4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.model.SafeTensors;
import io.grpo4j.trainer.model.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** End-to-end runs of forward, generate and bench generate through the picocli entry point. */
class ModelCommandsTest {
  @TempDir Path tmp;

  record Run(int code, String out, String err) {}

  static Run run(String... args) {
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
      int code = GrpoCli.execute(args);
      return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
  }

  @Test
  void forwardWritesTheFixtureBatchLogits() throws Exception {
    Path model = Fixtures.model("tiny-llama");
    Map<String, Tensor> exp = Fixtures.expected("tiny-llama");
    Tensor ids = exp.get("batch_input_ids");
    int b = (int) ids.shape()[0];
    int l = (int) ids.shape()[1];
    long[] idv = ids.toLongs();
    long[] mask = exp.get("batch_attention_mask").toLongs();
    ObjectMapper om = new ObjectMapper();
    var root = om.createObjectNode();
    var ia = root.putArray("input_ids");
    var ma = root.putArray("attention_mask");
    for (int i = 0; i < b; i++) {
      var r = ia.addArray();
      var m = ma.addArray();
      for (int s = 0; s < l; s++) {
        r.add(idv[i * l + s]);
        m.add(mask[i * l + s]);
      }
    }
    Path in = tmp.resolve("ids.json");
    om.writeValue(in.toFile(), root);
    Path out = tmp.resolve("logits.safetensors");
    Run r = run("forward", "--model", model.toString(), "--input", in.toString(), "--out", out.toString());
    assertEquals(0, r.code(), r.err());
    float[] got = SafeTensors.read(out).get("logits").toFloats();
    float[] want = exp.get("batch_logits").toFloats();
    int v = got.length / (b * l);
    double worst = 0;
    for (int i = 0; i < b; i++) {
      for (int s = 0; s < l; s++) {
        if (mask[i * l + s] == 1) {
          for (int j = 0; j < v; j++) {
            int k = (i * l + s) * v + j;
            worst = Math.max(worst, Math.abs(got[k] - want[k]));
          }
        }
      }
    }
    assertTrue(worst < 1e-4, "max diff " + worst);
  }

  @Test
  void forwardRejectsRaggedInputNamingTheRow() throws Exception {
    Path in = tmp.resolve("bad.json");
    Files.writeString(in, "{\"input_ids\": [[1, 2, 3], [4, 5]]}");
    Run r = run("forward", "--model", Fixtures.model("tiny-qwen2").toString(), "--input", in.toString(), "--out",
        tmp.resolve("x.safetensors").toString());
    assertEquals(2, r.code());
    assertTrue(r.err().contains("row 1") && r.err().contains("bad.json"), r.err());
    assertTrue(!Files.exists(tmp.resolve("x.safetensors")));
  }

  @Test
  void generateGreedyPrintsTheFixtureTokens() throws Exception {
    Map<String, Tensor> exp = Fixtures.expected("tiny-qwen3");
    JsonNode cases = new ObjectMapper().readTree(Fixtures.root().resolve("cases.json").toFile());
    StringBuilder ids = new StringBuilder();
    cases.get("prompt_ids").get(0).forEach(x -> ids.append(ids.length() == 0 ? "" : ",").append(x.asLong()));
    Run r = run("generate", "--model", Fixtures.model("tiny-qwen3").toString(), "--prompt-ids", ids.toString(),
        "--greedy", "--max-new-tokens", "12", "--no-stop", "--print-ids");
    assertEquals(0, r.code(), r.err());
    long[] want = exp.get("greedy_ids").toLongs();
    // prompt 0 is the longest, so its greedy row in the padded batch equals the unpadded run
    StringBuilder first = new StringBuilder("ids: [");
    for (int i = 0; i < 12; i++) {
      first.append(i == 0 ? "" : ", ").append(want[i]);
    }
    assertTrue(r.out().contains(first + "]"), r.out());
  }

  @Test
  void generateChatAndSeededSamplingIsRepeatable() {
    String model = Fixtures.model("tiny-qwen2").toString();
    Run a = run("generate", "--model", model, "--prompt", "what is 12 + 30 ?", "--chat", "--temperature", "0.8",
        "--top-p", "0.9", "--top-k", "50", "--seed", "7", "--max-new-tokens", "16", "--print-ids");
    Run b = run("generate", "--model", model, "--prompt", "what is 12 + 30 ?", "--chat", "--temperature", "0.8",
        "--top-p", "0.9", "--top-k", "50", "--seed", "7", "--max-new-tokens", "16", "--print-ids");
    assertEquals(0, a.code(), a.err());
    assertEquals(a.out(), b.out());
  }

  @Test
  void benchGenerateEndsWithJson() throws Exception {
    JsonNode j = lastJsonLine(run("bench", "generate", "--model", Fixtures.model("tiny-qwen2").toString(), "--batch",
        "4", "--prompt-len", "8", "--new-tokens", "8", "--iterations", "3", "--warmup", "2", "--warmup-s", "0.3",
        "--json"));
    assertTrue(j.get("tokens_per_s").asDouble() > 0);
    assertTrue(j.get("warmup_calls").asInt() >= 2, j.toString()); // at least --warmup, and on for --warmup-s
    assertTrue(j.get("jit_ms").asLong() >= 0, j.toString());
    assertEquals(3, j.get("calls").asInt());
    assertTrue(j.get("peak_rss_mb").asDouble() > 0);
    Run bad = run("bench", "generate", "--model", Fixtures.model("tiny-qwen2").toString(), "--warmup-s", "-2");
    assertEquals(2, bad.code());
    assertTrue(bad.err().contains("--warmup-s") && bad.err().contains("-2"), bad.err());
  }

  @Test
  void benchServeWarmsUpUnderLoadThenTimesEachLevel() throws Exception {
    Run r = run("bench", "serve", "--model", Fixtures.model("tiny-qwen2").toString(), "--clients", "1,4",
        "--requests", "8", "--prompt-tokens", "8", "--max-tokens", "4", "--warmup-s", "0.5", "--json");
    JsonNode j = lastJsonLine(r);
    // every client of every level sent at least one untimed request before the timed levels (4 + 1)
    assertTrue(j.get("warmup_requests").asLong() >= 5, r.out());
    assertEquals(2, j.get("levels").size());
    for (JsonNode level : j.get("levels")) {
      assertTrue(level.get("requests_per_s").asDouble() > 0, r.out());
      assertTrue(level.get("jit_ms").asLong() >= 0, r.out());
    }
    double occupancy = j.get("levels").get(1).get("occupancy").asDouble();
    assertTrue(occupancy >= 1 && occupancy <= 4, r.out()); // sequences per decoding step with 4 clients
    Run bad = run("bench", "serve", "--model", Fixtures.model("tiny-qwen2").toString(), "--warmup-s", "-1");
    assertEquals(2, bad.code());
    assertTrue(bad.err().contains("--warmup-s"), bad.err());
    Run none = run("bench", "serve", "--model", Fixtures.model("tiny-qwen2").toString(), "--clients", "4,0");
    assertEquals(2, none.code());
    assertTrue(none.err().contains("--clients") && none.err().contains("0"), none.err());
  }

  /** A --json run's figures: it exited 0 and its last line is one JSON object. */
  private static JsonNode lastJsonLine(Run r) throws Exception {
    assertEquals(0, r.code(), r.err());
    String[] lines = r.out().trim().split("\n");
    return new ObjectMapper().readTree(lines[lines.length - 1]);
  }

  @Test
  void everyCommandHasHelp() {
    for (String c : new String[] {"forward", "generate", "bench"}) {
      Run r = run(c, "--help");
      assertEquals(0, r.code());
      assertTrue(r.out().contains("Usage: grpo " + c), r.out());
    }
  }

  @Test
  void missingModelFolderIsOneClearLine() {
    Run r = run("generate", "--model", tmp.resolve("nope").toString(), "--prompt", "x");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("nope") && r.err().lines().count() == 1, r.err());
  }
}
