package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.run.JsonLines;
import io.grpo4j.trainer.serve.InferenceEngine;
import io.grpo4j.trainer.serve.InferenceServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The real-model recipes under configs/ run unchanged except for the model (a fixture of the same architecture)
 * and a small GSM8K/MATH-shaped data file; sizes are shrunk so a step takes seconds.
 */
class RecipeConfigsTest {
  @TempDir Path tmp;

  @ParameterizedTest
  @CsvSource({"qwen2.5-0.5b-gsm8k.yaml,tiny-qwen2", "qwen3-0.6b-math.yaml,tiny-qwen3"})
  void recipeRunsOnTheFixtureOfItsArchitecture(String recipe, String fixture) throws Exception {
    Path repo = Path.of(System.getProperty("grpo.root", ".."));
    Map<String, Object> y = ConfigFiles.read(repo.resolve("configs").resolve(recipe));
    Path data = tmp.resolve("data.jsonl");
    StringBuilder rows = new StringBuilder();
    for (int i = 0; i < 20; i++) {
      rows.append("{\"question\": \"Tom has ").append(i).append(" apples and buys 2 more. How many?\", \"answer\": \"")
          .append(i).append(" + 2 = <<").append(i).append("+2=").append(i + 2).append(">>\\n#### ").append(i + 2)
          .append("\", \"problem\": \"What is $").append(i).append("+2$?\", \"solution\": \"It is $\\\\boxed{")
          .append(i + 2).append("}$.\"}\n");
    }
    Files.writeString(data, rows);
    y.put("model", Fixtures.model(fixture).toString());
    ConfigFiles.set(y, "dataset.path=" + data);
    for (String s : new String[] {"training.steps=1", "training.minibatch_size=4", "grpo.group_size=2",
        "grpo.prompts_per_step=2", "sampling.max_completion_length=8", "eval.every=1", "eval.max_prompts=1",
        "checkpoint.save_every=1", "logging.progress=false", "dataset.eval_fraction=0.2"}) {
      ConfigFiles.set(y, s);
    }
    Path run = tmp.resolve("run");
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
      t.train(m -> { }, () -> false);
    }
    assertEquals(1, JsonLines.readAll(run.resolve("metrics.jsonl")).size());
  }

  /** The remote-rollout recipe, pointed at an in-process grpo serve (same request shapes; its reload call). */
  @Test
  void remoteRecipeRunsAgainstGrpoServe() throws Exception {
    Path repo = Path.of(System.getProperty("grpo.root", ".."));
    Map<String, Object> y = ConfigFiles.read(repo.resolve("configs/qwen2.5-0.5b-gsm8k-vllm.yaml"));
    Path data = tmp.resolve("data.jsonl");
    StringBuilder rows = new StringBuilder();
    for (int i = 0; i < 20; i++) {
      rows.append("{\"question\": \"What is ").append(i).append(" + 2?\", \"answer\": \"#### ").append(i + 2)
          .append("\"}\n");
    }
    Files.writeString(data, rows);
    Path fixture = Fixtures.model("tiny-qwen2");
    try (InferenceServer server = new InferenceServer(new InferenceEngine(InferenceEngine.Settings.of(fixture)), "policy")
        .start("127.0.0.1", 0)) {
      y.put("model", fixture.toString());
      for (String s : new String[] {"device=cpu", "dataset.path=" + data, "training.steps=2",
          "training.minibatch_size=4", "grpo.group_size=2", "grpo.prompts_per_step=2",
          "sampling.max_completion_length=8", "eval.every=2", "eval.max_prompts=1", "checkpoint.save_every=2",
          "logging.progress=false", "dataset.eval_fraction=0.2", "rollout.server=grpo",
          "rollout.urls=[http://127.0.0.1:" + server.port() + "]", "rollout.sync_dir=" + tmp.resolve("policy")}) {
        ConfigFiles.set(y, s);
      }
      Path run = tmp.resolve("run");
      try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
        t.train(m -> { }, () -> false);
      }
      assertEquals(2, JsonLines.readAll(run.resolve("metrics.jsonl")).size());
      assertEquals(3, server.engine().weightsVersion()); // at start and after each of the 2 steps
      assertEquals(tmp.resolve("policy").toAbsolutePath().normalize(), server.engine().weights());
    }
  }
}
