package io.grpo4j.trainer.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.cli.GrpoCli;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.grpo.GrpoTrainer;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.Precision;
import io.grpo4j.trainer.run.JsonLines;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What only a CUDA device shows: captured decoding steps replay to the same tokens as eager ones, GPU memory stays
 * flat over many sampling calls and training steps, and running out of memory gives one message with the shapes
 * and the settings to lower. Skipped without a GPU (CI); run on the GPU machine.
 */
class CudaTest {
  @TempDir Path tmp;

  @BeforeAll
  static void needsCuda() {
    assumeTrue(Engine.getInstance().getGpuCount() > 0 && NativeTorch.available(),
        "needs a CUDA GPU and the PyTorch set up by scripts/setup-pytorch.sh");
  }

  @Test
  void graphReplaysGiveTheEagerTokensAndMemoryStaysFlat() throws Exception {
    try (NDManager root = NDManager.newBaseManager(Device.gpu());
        CausalLM model = HfCheckpoint.open(Fixtures.model("tiny-qwen2")).loadModel(root.newSubManager(),
            Precision.BF16)) {
      List<Sampler.Request> reqs = new ArrayList<>();
      for (int i = 0; i < 6; i++) {
        reqs.add(new Sampler.Request(new long[] {1, 20 + i, 30, 40}, 4,
            SamplingParams.sample(24, 0.9).withFilters(0.95, 40, 0.02, 1.1), 100 + i, true));
      }
      Sampler graphs = new Sampler(model, 0, true);
      assertTrue(graphs.usesCudaGraphs(), "CUDA graphs in use");
      List<Generation> a = graphs.generate(reqs, null, null);
      System.setProperty("grpo4j.noCudaGraphs", "true");
      List<Generation> eager;
      try {
        Sampler plain = new Sampler(model, 0, true);
        assertTrue(!plain.usesCudaGraphs());
        eager = plain.generate(reqs, null, null);
      } finally {
        System.clearProperty("grpo4j.noCudaGraphs");
      }
      for (int i = 0; i < a.size(); i++) {
        assertArrayEquals(eager.get(i).completionIds(), a.get(i).completionIds(), "row " + i);
      }
      long[] allocated = new long[30];
      for (int i = 0; i < allocated.length; i++) {
        graphs.generate(reqs, null, null);
        allocated[i] = Gpu.memory(model.device()).allocated();
      }
      System.out.println("GPU memory allocated after sampling calls 1, 10, 30: " + allocated[0] + ", " + allocated[9]
          + ", " + allocated[29] + " bytes");
      assertEquals(allocated[4], allocated[29], "memory after call 5 and call 30");
    }
  }

  /** A data-parallel rank on gpu(1) captures there while the thread's current CUDA device is still 0. */
  @Test
  void graphsCaptureAndReplayOnASecondGpu() {
    assumeTrue(Engine.getInstance().getGpuCount() > 1, "needs two GPUs");
    Device second = Device.gpu(1);
    try (NDManager m = NDManager.newBaseManager(second); CudaGraph g = CudaGraph.open(second)) {
      NDArray x = m.create(new float[] {1, 2, 3});
      NDArray two = m.create(2f); // constants go up before the capture: no host copies while recording
      NDArray one = m.create(1f);
      x.mul(two).add(one).close(); // warm-up on the capture stream
      g.capture();
      NDArray y = x.mul(two).add(one); // recorded, not run
      g.end();
      x.muli(m.create(10f)); // new input, in place
      g.replay();
      assertArrayEquals(new float[] {21, 41, 61}, y.toFloatArray());
      x.addi(one);
      g.replay();
      assertArrayEquals(new float[] {23, 43, 63}, y.toFloatArray());
    }
  }

  @Test
  void trainingStepsKeepGpuMemoryFlat() throws Exception {
    Path repo = Path.of(System.getProperty("grpo.root", ".."));
    Map<String, Object> y = ConfigFiles.read(repo.resolve("configs/smoke.yaml"));
    y.put("model", Fixtures.model("tiny-qwen2").toString());
    ConfigFiles.set(y, "device=gpu");
    ConfigFiles.set(y, "precision=bf16");
    ConfigFiles.set(y, "training.steps=40");
    ConfigFiles.set(y, "logging.progress=false");
    ConfigFiles.set(y, "eval.every=0");
    ConfigFiles.set(y, "checkpoint.save_every=0");
    Path run = tmp.resolve("run");
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
      t.train(m -> { }, () -> false);
    }
    List<JsonNode> m = JsonLines.readAll(run.resolve("metrics.jsonl"));
    double at10 = m.get(9).get("gpu_mem_allocated_mb").asDouble();
    double at40 = m.get(39).get("gpu_mem_allocated_mb").asDouble();
    System.out.println("GPU memory allocated after steps 10 and 40: " + at10 + " / " + at40 + " MB; peak at 40: "
        + m.get(39).get("gpu_mem_peak_mb"));
    assertTrue(Math.abs(at40 - at10) <= 0.05 * at10 + 2, "allocated " + at10 + " MB at step 10, " + at40 + " at 40");
  }

  @Test
  void outOfMemoryIsOneMessageWithTheShapesAndTheKnobs() {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream old = System.err;
    int code;
    System.setErr(new PrintStream(err, true));
    try {
      // 4096 rows x 8192 tokens: the activations alone need terabytes
      code = GrpoCli.execute("bench", "update", "--model", Fixtures.model("tiny-qwen2").toString(), "--device", "gpu",
          "--rows", "4096", "--prompt-len", "4096", "--completion-len", "4096", "--iterations", "1", "--warmup", "0");
    } finally {
      System.setErr(old);
    }
    String msg = err.toString();
    System.out.println(msg);
    assertEquals(3, code, msg);
    assertTrue(msg.contains("ran out of memory") && msg.contains("--rows") && !msg.contains("\tat "), msg);
    // the device is usable afterwards
    try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
      assertEquals(6f, m.create(new float[] {1, 2, 3}).sum().getFloat());
    }
  }
}
