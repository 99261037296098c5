package io.grpo4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.run.JsonLines;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A shortened quickstart through the CLI (same YAML, small sizes), checking every artefact, then the stand-alone
 * commands on its outputs: eval, sample, export, report, rewards score, data generate / preview.
 */
class PipelineTest {
  @TempDir Path tmp;

  @Test
  void shortenedQuickstartProducesEveryArtefact() throws Exception {
    Path repo = Path.of(System.getProperty("grpo.root", ".."));
    Path run = tmp.resolve("qs");
    var r = ModelCommandsTest.run("pipeline", "--config", repo.resolve("configs/quickstart.yaml").toString(),
        "--run-dir", run.toString(), "--set", "task.train_n=300", "--set", "task.eval_n=6",
        "--set", "init.hidden=32", "--set", "init.layers=1", "--set", "init.heads=2", "--set", "init.kv_heads=1",
        "--set", "sft.steps=4", "--set", "sft.batch_size=4", "--set", "grpo.steps=2", "--set", "grpo.group_size=2",
        "--set", "grpo.prompts_per_step=2", "--set", "grpo.sampling.max_completion_length=12",
        "--set", "eval.k=2", "--set", "eval.max_prompts=6", "--set", "eval.max_new_tokens=12", "--set", "eval.every=1",
        "--set", "eval.during_prompts=2", "--set", "grpo.optimizer.betas=[0.9,0.99]",
        "--set", "grpo.schedule.warmup_steps=1");
    assertEquals(0, r.code(), r.err() + r.out());
    // sft.schedule reaches the SFT stage's config, grpo.optimizer / grpo.schedule the GRPO stage's
    Map<String, Object> sftYaml = io.grpo4j.trainer.config.ConfigFiles.read(run.resolve("sft.yaml"));
    Map<String, Object> qs = io.grpo4j.trainer.config.ConfigFiles.read(repo.resolve("configs/quickstart.yaml"));
    Object sftSchedule = ((Map<?, ?>) qs.get("sft")).get("schedule");
    assertEquals(sftSchedule == null ? "cosine" : sftSchedule,
        ((Map<?, ?>) sftYaml.get("schedule")).get("type"));
    Map<String, Object> g = io.grpo4j.trainer.config.ConfigFiles.read(run.resolve("grpo.yaml"));
    assertEquals(List.of(0.9, 0.99), ((Map<?, ?>) g.get("optimizer")).get("betas"));
    assertEquals(1, ((Map<?, ?>) g.get("schedule")).get("warmup_steps"));
    assertTrue(r.out().contains("held-out pass@1") && r.out().contains("report:"), r.out());
    JsonNode summary = new ObjectMapper().readTree(run.resolve("summary.json").toFile());
    List<String> stages = new java.util.ArrayList<>();
    summary.get("stages").forEach(s -> stages.add(s.get("stage").asText()));
    assertEquals(List.of("data", "init", "sft", "grpo", "export", "report"), stages);
    for (JsonNode s : summary.get("stages")) {
      assertTrue(s.get("seconds").asDouble() >= 0);
      if (List.of("init", "sft", "grpo").contains(s.get("stage").asText())) {
        double acc = s.get("eval_accuracy").asDouble();
        assertTrue(acc >= 0 && acc <= 1, s.toString());
      }
    }
    assertEquals(2, JsonLines.readAll(run.resolve("grpo/metrics.jsonl")).size());
    assertEquals(4, JsonLines.readAll(run.resolve("sft/metrics.jsonl")).size());
    assertTrue(JsonLines.readAll(run.resolve("grpo/samples.jsonl")).size() > 0);
    assertTrue(Files.isRegularFile(run.resolve("grpo.yaml")) && Files.isRegularFile(run.resolve("sft.yaml")));
    // the export loads again, weights and tokenizer
    HfCheckpoint exp = HfCheckpoint.open(run.resolve("export"));
    try (NDManager m = NDManager.newBaseManager()) {
      exp.loadModel(m.newSubManager()).close();
    }
    for (String f : List.of("tokenizer.json", "tokenizer_config.json", "generation_config.json", "config.json")) {
      assertTrue(Files.size(run.resolve("export").resolve(f)) > 0, f);
    }
    // report: html with images, and real PNG files
    String html = Files.readString(run.resolve("report.html"));
    assertTrue(html.contains("<img src=\"plots/rewards.png\"") && html.contains("Pipeline") && html.contains("best"));
    try (var s = Files.list(run.resolve("plots"))) {
      for (Path png : s.toList()) {
        byte[] b = Files.readAllBytes(png);
        assertTrue(b.length > 1000 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G', png + " is not a PNG");
      }
    }

    // the stand-alone commands on the pipeline's outputs
    Path grpoYaml = run.resolve("grpo.yaml");
    Path model = run.resolve("export");
    var ev = ModelCommandsTest.run("eval", "--model", model.toString(), "--config", grpoYaml.toString(), "--k", "2",
        "--max-prompts", "3", "--max-new-tokens", "8", "--json");
    assertEquals(0, ev.code(), ev.err());
    JsonNode evj = new ObjectMapper().readTree(ev.out());
    assertTrue(evj.has("pass@1") && evj.has("pass@2") && evj.has("rewards/arithmetic"), ev.out());
    Path traces = tmp.resolve("traces.jsonl");
    var sa = ModelCommandsTest.run("sample", "--model", model.toString(), "--config", grpoYaml.toString(), "--n", "2",
        "--max-prompts", "3", "--max-new-tokens", "8", "--keep", "reward >= 0", "--out", traces.toString());
    assertEquals(0, sa.code(), sa.err());
    assertTrue(Files.exists(traces));
    var bad = ModelCommandsTest.run("sample", "--model", model.toString(), "--config", grpoYaml.toString(), "--keep",
        "arithmatic >= 1", "--out", traces.toString());
    assertEquals(2, bad.code());
    assertTrue(bad.err().contains("arithmatic"), bad.err());
    Path out = tmp.resolve("exported-bf16");
    var missing = ModelCommandsTest.run("export", "--run", run.resolve("grpo").toString(), "--step", "7", "--out",
        out.toString());
    assertEquals(2, missing.code());
    assertTrue(missing.err().contains("step 7"), missing.err());
    var ex = ModelCommandsTest.run("export", "--run", run.resolve("grpo").toString(), "--out", out.toString(),
        "--dtype", "bf16");
    assertEquals(0, ex.code(), ex.err());
    HfCheckpoint.open(out).tensors().values().forEach(t -> assertEquals("BF16", t.dtype()));
    var rep = ModelCommandsTest.run("report", run.resolve("grpo").toString());
    assertEquals(0, rep.code(), rep.err());
    assertTrue(Files.exists(run.resolve("grpo/report.html")));
  }

  @Test
  void anSftScheduleItDoesNotKnowIsOneLineNamingTheKey() {
    Path repo = Path.of(System.getProperty("grpo.root", ".."));
    var r = ModelCommandsTest.run("pipeline", "--config", repo.resolve("configs/quickstart.yaml").toString(),
        "--run-dir", tmp.resolve("bad").toString(), "--set", "task.train_n=50", "--set", "task.eval_n=4",
        "--set", "init.hidden=32", "--set", "init.layers=1", "--set", "init.heads=2", "--set", "init.kv_heads=1",
        "--set", "sft.schedule=cosin");
    assertEquals(2, r.code(), r.out() + r.err());
    assertTrue(r.err().contains("sft.schedule") && r.err().contains("cosin"), r.err());
    assertFalse(Files.exists(tmp.resolve("bad")), "nothing ran, nothing was written");
  }

  @Test
  void rewardsScoreAndDataCommands() throws Exception {
    Path data = tmp.resolve("cd.jsonl");
    var g = ModelCommandsTest.run("data", "generate", "--task", "countdown", "--n", "20", "--seed", "3", "--out",
        data.toString(), "--solutions");
    assertEquals(0, g.code(), g.err());
    // turn the worked solutions into "completions" and score them with the task checker + format
    Path comp = tmp.resolve("completions.jsonl");
    StringBuilder sb = new StringBuilder();
    ObjectMapper om = new ObjectMapper();
    for (JsonNode row : JsonLines.readAll(data)) {
      var o = (com.fasterxml.jackson.databind.node.ObjectNode) row.deepCopy();
      o.put("completion", row.get("solution").asText());
      sb.append(om.writeValueAsString(o)).append('\n');
    }
    Files.writeString(comp, sb);
    Path cfg = tmp.resolve("rewards.yaml");
    ConfigFiles.write(cfg, Map.of("rewards", List.of(Map.of("name", "countdown"), Map.of("name", "format",
        "weight", 0.5))));
    Path scored = tmp.resolve("scored.jsonl");
    var s = ModelCommandsTest.run("rewards", "score", "--config", cfg.toString(), "--input", comp.toString(),
        "--output", scored.toString());
    assertEquals(0, s.code(), s.err());
    List<JsonNode> rows = JsonLines.readAll(scored);
    assertEquals(20, rows.size());
    for (JsonNode row : rows) {
      assertEquals(1.0, row.get("rewards").get("countdown").asDouble());
      assertEquals(1.5, row.get("reward").asDouble(), 1e-12);
    }
    assertTrue(s.out().contains("countdown") && s.out().contains("mean 1.0000"), s.out());
    var l = ModelCommandsTest.run("rewards", "list");
    assertTrue(l.out().contains("math_answer") && l.out().contains("relative_tolerance"), l.out());
    Path repo = Path.of(System.getProperty("grpo.root", ".."));
    Map<String, Object> smoke = ConfigFiles.read(repo.resolve("configs/smoke.yaml"));
    smoke.put("model", io.grpo4j.trainer.Fixtures.model("tiny-qwen2").toString());
    Path sc = tmp.resolve("smoke.yaml");
    ConfigFiles.write(sc, smoke);
    var p = ModelCommandsTest.run("data", "preview", "--config", sc.toString(), "--n", "2");
    assertEquals(0, p.code(), p.err());
    assertTrue(p.out().contains("<|im_start|>system") && p.out().contains("What is") && p.out().contains("tokens]"),
        p.out());
  }

  @Test
  void initWritesALoadableModelWithItsOwnBpe() throws Exception {
    Path corpus = tmp.resolve("corpus.txt");
    Files.writeString(corpus, "What is 12 + 30? <think>12 + 30 = 42.</think><answer>42</answer>\n".repeat(50));
    for (String arch : List.of("qwen2", "llama", "qwen3")) {
      Path out = tmp.resolve("m-" + arch);
      var r = ModelCommandsTest.run("init", "--out", out.toString(), "--arch", arch, "--hidden", "32", "--layers", "1",
          "--heads", "2", "--kv-heads", "1", "--tokenizer", "bpe", "--corpus", corpus.toString(), "--vocab", "300");
      assertEquals(0, r.code(), r.err());
      var gen = ModelCommandsTest.run("generate", "--model", out.toString(), "--prompt", "What is 1 + 2?", "--chat",
          "--max-new-tokens", "4", "--print-ids");
      assertEquals(0, gen.code(), gen.err());
      try (var tok = io.grpo4j.trainer.tokenizer.HfTokenizer.load(out)) {
        assertEquals(1, tok.encode("<think>").length, "R1 tags are single special tokens");
        assertTrue(tok.encode("What is 12 + 30?").length < "What is 12 + 30?".length(), "BPE merges apply");
      }
    }
    var again = ModelCommandsTest.run("init", "--out", tmp.resolve("m-qwen2").toString());
    assertEquals(2, again.code(), "refuses to overwrite");
  }
}
