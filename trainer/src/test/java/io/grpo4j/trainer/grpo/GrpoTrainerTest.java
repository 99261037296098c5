package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.cli.GrpoCli;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.run.JsonLines;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** End to end on tiny-qwen2: steps, metrics, checkpoints, and a SIGKILLed run resumed to the same metrics. */
class GrpoTrainerTest {
  @TempDir Path tmp;

  Map<String, Object> smoke(int steps) throws Exception {
    Path repo = Path.of(System.getProperty("grpo.root", ".."));
    Map<String, Object> y = ConfigFiles.read(repo.resolve("configs/smoke.yaml"));
    y.put("model", Fixtures.model("tiny-qwen2").toString());
    ConfigFiles.set(y, "training.steps=" + steps);
    ConfigFiles.set(y, "logging.progress=false");
    return y;
  }

  static List<JsonNode> metrics(Path run) throws Exception {
    return JsonLines.readAll(run.resolve("metrics.jsonl"));
  }

  @Test
  void smokeRunWritesEverything() throws Exception {
    Path run = tmp.resolve("smoke");
    Map<String, Object> y = smoke(6);
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
      t.train(m -> { }, () -> false);
    }
    List<JsonNode> m = metrics(run);
    assertEquals(6, m.size());
    for (JsonNode line : m) {
      for (String k : List.of("step", "loss", "reward_mean", "kl", "clip_ratio_low", "entropy", "grad_norm",
          "completion_length_mean", "zero_std_fraction", "sampling_tokens_per_s")) {
        assertTrue(line.has(k), "metrics line lacks " + k + ": " + line);
      }
    }
    assertEquals(List.of(3L, 6L), io.grpo4j.trainer.run.Checkpointer.completeSteps(run.resolve("checkpoints")));
    assertTrue(Files.exists(run.resolve("config.yaml")));
    assertTrue(JsonLines.readAll(run.resolve("samples.jsonl")).size() >= 6);
    List<JsonNode> ev = JsonLines.readAll(run.resolve("eval.jsonl"));
    assertEquals(List.of(0L, 3L, 6L), ev.stream().map(e -> e.get("step").asLong()).toList());
    assertTrue(ev.get(0).has("pass@1"));
    // the final export and every checkpoint load again as HF folders
    HfCheckpoint.open(run.resolve("final"));
    HfCheckpoint.open(run.resolve("checkpoints/step-6"));
    try (var s = Files.list(run.resolve("checkpoints"))) {
      assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".")), "no temp folders left");
    }
  }

  @Test
  void aRunThatCannotLearnSaysSoInPlainWords() throws Exception {
    // the case: tiny-qwen2 with only the task's checker scores 0 on every completion
    Path run = tmp.resolve("silent");
    Map<String, Object> y = smoke(5);
    y.put("rewards", List.of(Map.of("name", "arithmetic")));
    ConfigFiles.set(y, "health.patience=4");
    ConfigFiles.set(y, "eval.every=0");
    ConfigFiles.set(y, "checkpoint.save_every=0");
    java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
    java.io.PrintStream old = System.err;
    System.setErr(new java.io.PrintStream(err, true));
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
      t.train(m -> { }, () -> false);
    } finally {
      System.setErr(old);
    }
    String said = err.toString();
    assertTrue(said.contains("step 4: warning (zero_spread): for 4 steps every group's rewards had no spread"
        + " (every completion scored 0; arithmetic mean 0)"), said);
    assertTrue(said.contains("step 4: warning (reward_never_fires): reward 'arithmetic' gave 0 to every one of the"
        + " 32 completions of the first 4 steps"), said);
    List<JsonNode> h = JsonLines.readAll(run.resolve("health.jsonl"));
    assertEquals(List.of("zero_spread", "reward_never_fires"), h.stream().map(x -> x.get("check").asText()).toList());
    JsonNode last = metrics(run).get(4);
    assertEquals(5, last.get("health/zero_spread_steps").asInt());
    assertEquals(1, last.get("health/silent_rewards").asInt());
    assertEquals(2, last.get("health/warnings").asInt());
    // and grpo report shows them
    assertEquals(0, GrpoCli.execute("report", run.toString()));
    String html = Files.readString(run.resolve("report.html"));
    assertTrue(html.contains("Run health") && html.contains("reward_never_fires"), "report has the warnings");
  }

  @Test
  void killedRunResumesToTheSameMetrics() throws Exception {
    // uninterrupted reference run
    Path full = tmp.resolve("full");
    Map<String, Object> y = smoke(6);
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, full)) {
      t.train(m -> { }, () -> false);
    }
    // the same run in a child JVM, SIGKILLed once its step-3 checkpoint exists
    Path cfgFile = tmp.resolve("run.yaml");
    ConfigFiles.write(cfgFile, smoke(6));
    Path killed = tmp.resolve("killed");
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"), GrpoCli.class.getName(), "train",
        "--config", cfgFile.toString(), "--run-dir", killed.toString()));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile())
        .start();
    long deadline = System.currentTimeMillis() + 120_000;
    while (!Files.exists(killed.resolve("checkpoints/step-3/trainer_state.json"))) {
      assertTrue(p.isAlive() || Files.exists(killed.resolve("checkpoints/step-3/trainer_state.json")),
          "child died early: " + Files.readString(tmp.resolve("child.log")));
      assertTrue(System.currentTimeMillis() < deadline, "child never checkpointed");
      Thread.sleep(20);
    }
    p.destroyForcibly(); // SIGKILL
    p.waitFor(30, TimeUnit.SECONDS);
    assertFalse(p.isAlive());
    // resume in this process from the latest complete checkpoint
    Map<String, Object> saved = ConfigFiles.read(killed.resolve("config.yaml"));
    try (GrpoTrainer t = GrpoTrainer.resume(TrainConfig.parse(new ConfigMap("", saved)), killed)) {
      assertTrue(t.currentStep() >= 3);
      t.train(m -> { }, () -> false);
    }
    List<JsonNode> a = metrics(full);
    List<JsonNode> b = metrics(killed);
    assertEquals(6, b.size(), "every step exactly once");
    for (int i = 0; i < 6; i++) {
      assertEquals(a.get(i).get("step").asLong(), b.get(i).get("step").asLong());
      for (String k : List.of("reward_mean", "loss", "kl", "grad_norm", "entropy")) {
        assertEquals(a.get(i).get(k).asDouble(), b.get(i).get(k).asDouble(),
            1e-5 * Math.max(1, Math.abs(a.get(i).get(k).asDouble())), "step " + (i + 1) + " " + k);
      }
    }
  }

  @Test
  void configErrorsNameKeyAndAllowedValues() throws Exception {
    Map<String, Object> y = smoke(6);
    ConfigFiles.set(y, "grpo.loss_type=ppo");
    var e = assertThrows(ConfigException.class, () -> TrainConfig.parse(new ConfigMap("", y)));
    assertTrue(e.getMessage().contains("grpo.loss_type") && e.getMessage().contains("dr_grpo"), e.getMessage());
    Map<String, Object> y2 = smoke(6);
    ConfigFiles.set(y2, "grpo.grup_size=4");
    var e2 = assertThrows(ConfigException.class, () -> TrainConfig.parse(new ConfigMap("", y2)));
    assertTrue(e2.getMessage().contains("grpo.grup_size") && e2.getMessage().contains("group_size"), e2.getMessage());
    Map<String, Object> y3 = smoke(6);
    ConfigFiles.set(y3, "sampling.temperature=hot");
    var e3 = assertThrows(ConfigException.class, () -> TrainConfig.parse(new ConfigMap("", y3)));
    assertTrue(e3.getMessage().contains("sampling.temperature"), e3.getMessage());
    Map<String, Object> y4 = smoke(6);
    ConfigFiles.set(y4, "grpo.epsilon_low=-1");
    var e4 = assertThrows(ConfigException.class, () -> TrainConfig.parse(new ConfigMap("", y4)));
    assertTrue(e4.getMessage().contains("grpo.epsilon_low") && e4.getMessage().contains("outside"), e4.getMessage());
  }

  @Test
  void dynamicSamplingSequenceLevelAndMinibatchesRun() throws Exception {
    Path run = tmp.resolve("variants");
    Map<String, Object> y = smoke(2);
    ConfigFiles.set(y, "grpo.filter_zero_std_groups=true");
    ConfigFiles.set(y, "grpo.importance_sampling_level=sequence");
    ConfigFiles.set(y, "grpo.iterations=2");
    ConfigFiles.set(y, "grpo.loss_type=dapo");
    ConfigFiles.set(y, "grpo.mask_truncated_completions=true");
    ConfigFiles.set(y, "grpo.bias_correction_kl=true");
    ConfigFiles.set(y, "grpo.ref_sync_every=1");
    ConfigFiles.set(y, "training.minibatch_size=3");
    ConfigFiles.set(y, "schedule.type=cosine");
    ConfigFiles.set(y, "eval.every=0");
    ConfigFiles.set(y, "checkpoint.save_every=2");
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
      t.train(m -> { }, () -> false);
    }
    List<JsonNode> m = metrics(run);
    assertEquals(2, m.size());
    assertTrue(m.get(0).get("resample_rounds").asInt() >= 1);
    assertTrue(Files.isDirectory(run.resolve("checkpoints/step-2/ref")), "a synced reference is checkpointed");
  }

  @Test
  void nonFiniteUpdatesAreSkippedThenTheRunStopsWithItsCheckpointsIntact() throws Exception {
    Path run = tmp.resolve("diverge");
    Map<String, Object> y = smoke(20);
    ConfigFiles.set(y, "training.max_consecutive_skips=5");
    ConfigFiles.set(y, "eval.every=0");
    ConfigFiles.set(y, "checkpoint.save_every=1");
    var e = assertThrows(TrainingDivergedException.class, () -> {
      try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
        t.train(m -> {
          if (((Number) m.get("step")).intValue() == 2) {
            // the weights go bad, as after a numerical blow-up
            var norm = t.policy().parameters().get("model.norm.weight");
            float[] nan = new float[(int) norm.size()];
            java.util.Arrays.fill(nan, Float.NaN);
            norm.set(java.nio.FloatBuffer.wrap(nan));
          }
        }, () -> false);
      }
    });
    assertTrue(e.getMessage().contains("non-finite") && e.getMessage().contains("checkpoints"), e.getMessage());
    List<JsonNode> m = metrics(run);
    assertEquals(2, m.size());
    // the weights broke after step 2's update: its checkpoint is refused, step 1's stays
    assertEquals(List.of(1L), io.grpo4j.trainer.run.Checkpointer.completeSteps(run.resolve("checkpoints")),
        "no checkpoint of the broken weights");
    // every checkpoint written is complete and loads
    for (long step : io.grpo4j.trainer.run.Checkpointer.completeSteps(run.resolve("checkpoints"))) {
      HfCheckpoint.open(run.resolve("checkpoints/step-" + step));
    }
  }

  @Test
  void consecutiveSkipsStopTheRun() throws Exception {
    Path run = tmp.resolve("skips");
    Map<String, Object> y = smoke(20);
    ConfigFiles.set(y, "training.max_consecutive_skips=2");
    ConfigFiles.set(y, "eval.every=0");
    ConfigFiles.set(y, "checkpoint.save_every=0");
    var e = assertThrows(TrainingDivergedException.class, () -> {
      try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
        t.train(m -> {
          if (((Number) m.get("step")).intValue() == 1) {
            var norm = t.policy().parameters().get("model.norm.weight");
            float[] nan = new float[(int) norm.size()];
            java.util.Arrays.fill(nan, Float.NaN);
            norm.set(java.nio.FloatBuffer.wrap(nan));
          }
        }, () -> false);
      }
    });
    assertTrue(e.getMessage().contains("max_consecutive_skips = 2"), e.getMessage());
    assertEquals(3, metrics(run).size());
    assertTrue(!Files.exists(run.resolve("final")), "no final export of broken weights");
  }

  @Test
  void sigtermStopsAfterTheStepAndWritesACheckpoint() throws Exception {
    Path cfgFile = tmp.resolve("long.yaml");
    Map<String, Object> y = smoke(1000);
    ConfigFiles.set(y, "eval.every=0");
    ConfigFiles.set(y, "checkpoint.save_every=0");
    ConfigFiles.write(cfgFile, y);
    Path run = tmp.resolve("interrupted");
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"), GrpoCli.class.getName(), "train",
        "--config", cfgFile.toString(), "--run-dir", run.toString()));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile())
        .start();
    long deadline = System.currentTimeMillis() + 120_000;
    while (!Files.exists(run.resolve("metrics.jsonl")) || JsonLines.readAll(run.resolve("metrics.jsonl")).size() < 2) {
      assertTrue(p.isAlive(), "child died: " + Files.readString(tmp.resolve("child.log")));
      assertTrue(System.currentTimeMillis() < deadline, "child made no progress");
      Thread.sleep(50);
    }
    p.destroy(); // SIGTERM, as Ctrl-C's SIGINT: shutdown hooks run
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the run did not stop");
    List<Long> steps = io.grpo4j.trainer.run.Checkpointer.completeSteps(run.resolve("checkpoints"));
    assertEquals(1, steps.size(), "one checkpoint written on the way out: " + Files.readString(tmp.resolve("child.log")));
    assertEquals((long) metrics(run).size(), steps.get(0), "the checkpoint holds every finished step");
  }
}
