package io.grpo4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.device.NativeTorch;
import io.grpo4j.trainer.model.SafeTensors;
import io.grpo4j.trainer.model.Tensor;
import io.grpo4j.trainer.run.Checkpointer;
import io.grpo4j.trainer.run.JsonLines;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data parallelism through c10d with Gloo, 2 CPU ranks started by {@code grpo train --nproc 2}: the same per-step
 * loss, KL, reward and gradient norm as one process on the whole batch, and the same weights after 3 steps; a rank
 * killed mid-run stops the run with a message naming it and leaves the last checkpoint whole and resumable.
 *
 * <p>Needs grpo4j's JNI library built with c10d (scripts/setup-pytorch.sh; scripts/test.sh runs this class against
 * it when it can set one up): without it the collectives do not exist and the tests are skipped, saying so.
 */
class DistributedTrainingTest {
  @TempDir Path tmp;
  Path repo = Path.of(System.getProperty("grpo.root", ".."));

  @BeforeEach
  void needsCollectives() {
    assumeTrue(NativeTorch.available() && NativeTorch.collectives() > 0, "grpo4j's JNI library with c10d is not set"
        + " up (scripts/setup-pytorch.sh): " + NativeTorch.loadError());
  }

  List<String> smoke(Path run, int steps, String... more) {
    List<String> a = new ArrayList<>(List.of("train", "--config", repo.resolve("configs/smoke.yaml").toString(),
        "--run-dir", run.toString(), "--set", "model=" + Fixtures.model("tiny-qwen2"), "--set",
        "training.steps=" + steps, "--set", "logging.progress=false", "--set", "distributed.backend=gloo"));
    a.addAll(List.of(more));
    return a;
  }

  static float[] weights(Path folder, String name) throws Exception {
    return SafeTensors.read(folder.resolve("model.safetensors")).get(name).toFloats();
  }

  @Test
  void twoRanksOnHalfTheBatchEachMatchOneRankOnAllOfIt() throws Exception {
    Path one = tmp.resolve("one");
    Path two = tmp.resolve("two");
    var a = ModelCommandsTest.run(smoke(one, 3).toArray(String[]::new));
    assertEquals(0, a.code(), a.err());
    List<String> args = smoke(two, 3, "--nproc", "2");
    var b = ModelCommandsTest.run(args.toArray(String[]::new));
    assertEquals(0, b.code(), b.err());
    List<JsonNode> m1 = JsonLines.readAll(one.resolve("metrics.jsonl"));
    List<JsonNode> m2 = JsonLines.readAll(two.resolve("metrics.jsonl"));
    assertEquals(3, m1.size());
    assertEquals(3, m2.size(), "rank 0 alone writes metrics.jsonl, one line a step");
    for (int i = 0; i < 3; i++) {
      for (String k : List.of("loss", "kl", "reward_mean", "grad_norm", "entropy", "completion_length_mean",
          "rewards/format/mean")) {
        double x = m1.get(i).get(k).asDouble();
        double y = m2.get(i).get(k).asDouble();
        assertEquals(x, y, 1e-4 * Math.max(1, Math.abs(x)), "step " + (i + 1) + " " + k);
      }
    }
    Map<String, Tensor> w1 = SafeTensors.read(one.resolve("final/model.safetensors"));
    Map<String, Tensor> w2 = SafeTensors.read(two.resolve("final/model.safetensors"));
    for (String name : w1.keySet()) {
      float[] x = w1.get(name).toFloats();
      float[] y = w2.get(name).toFloats();
      double scale = 0;
      double diff = 0;
      for (int i = 0; i < x.length; i++) {
        scale = Math.max(scale, Math.abs(x[i]));
        diff = Math.max(diff, Math.abs(x[i] - y[i]));
      }
      assertTrue(diff <= 1e-5 * scale, name + ": weights after 3 steps differ by " + diff + " (scale " + scale + ")");
    }
    // resume the 2-rank run on 1 rank (same total batch): it continues from the checkpoint
    var c = ModelCommandsTest.run("train", "--resume", two.toString(), "--steps", "4");
    assertEquals(0, c.code(), c.err());
    assertEquals(4, JsonLines.readAll(two.resolve("metrics.jsonl")).size());
  }

  /** grpo bench train --nproc 2: the ranks run the timed steps together, rank 0 keeps the run's metrics. */
  @Test
  void benchTrainRunsItsStepsOnTwoRanks() throws Exception {
    Path run = tmp.resolve("bench");
    var r = ModelCommandsTest.run("bench", "train", "--model", Fixtures.model("tiny-qwen2").toString(), "--nproc",
        "2", "--prompts", "4", "--steps", "2", "--warmup", "1", "--keep-run", run.toString(), "--set",
        "distributed.backend=gloo");
    assertEquals(0, r.code(), r.err());
    List<JsonNode> m = JsonLines.readAll(run.resolve("metrics.jsonl"));
    assertEquals(3, m.size(), "one line a step, from rank 0 alone");
    for (JsonNode row : m) {
      assertTrue(row.get("time/allreduce_s").asDouble() > 0, "step " + row.get("step") + ": no all-reduce timed");
    }
  }

  @Test
  void aKilledRankStopsTheRunAndTheLastCheckpointResumes() throws Exception {
    Path run = tmp.resolve("killed");
    List<String> args = smoke(run, 400, "--nproc", "2", "--set", "checkpoint.save_every=1", "--set",
        "checkpoint.keep_last=2");
    CompletableFuture<ModelCommandsTest.Run> launcher = CompletableFuture.supplyAsync(
        () -> ModelCommandsTest.run(args.toArray(String[]::new)));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (Checkpointer.completeSteps(run.resolve("checkpoints")).size() < 2 && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
    assertTrue(Checkpointer.completeSteps(run.resolve("checkpoints")).size() >= 2, "no checkpoints in 120 s");
    // the launcher's children are the ranks, rank 0 started first: kill rank 1 as an OOM killer would
    List<ProcessHandle> ranks = ProcessHandle.current().children().sorted((x, y) -> Long.compare(x.pid(), y.pid()))
        .toList();
    assertEquals(2, ranks.size(), "two rank processes");
    ranks.get(1).destroyForcibly();
    ModelCommandsTest.Run r = launcher.get(120, TimeUnit.SECONDS);
    assertNotEquals(0, r.code());
    assertTrue(r.err().contains("rank 1 exited") && r.err().contains("--resume"), r.err());
    assertTrue(ProcessHandle.current().children().noneMatch(ProcessHandle::isAlive), "every rank stopped");
    // the checkpoints are whole: the latest resumes
    long last = Checkpointer.latest(run).map(p -> Long.parseLong(p.getFileName().toString().substring(5)))
        .orElseThrow();
    var c = ModelCommandsTest.run("train", "--resume", run.toString(), "--steps", String.valueOf(last + 1));
    assertEquals(0, c.code(), c.err());
    assertTrue(Files.isDirectory(run.resolve("final")));
  }
}
