package io.grpo4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.grpo.GrpoTrainer;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.NoGrad;
import io.grpo4j.trainer.model.SafeTensors;
import io.grpo4j.trainer.model.Tensor;
import io.grpo4j.trainer.run.JsonLines;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bar on tiny-qwen2: 4 GRPO steps with {@code lora: {r: 8, alpha: 16, target_modules: all-linear}} and
 * beta > 0 (the reference is the base with the adapters off), gradient checkpointing on; the adapters move and the
 * base does not; checkpoints hold PEFT folders and a killed run resumes to the same metrics; the export is PEFT's
 * folder, --merge an HF folder, and both give the same logits through grpo.
 */
class LoraRunTest {
  @TempDir Path tmp;

  static Map<String, Object> config(int steps) throws Exception {
    Path repo = Path.of(System.getProperty("grpo.root", ".."));
    Map<String, Object> y = ConfigFiles.read(repo.resolve("configs/smoke.yaml"));
    y.put("model", Fixtures.model("tiny-qwen2").toString());
    ConfigFiles.set(y, "training.steps=" + steps);
    ConfigFiles.set(y, "training.gradient_checkpointing=true");
    ConfigFiles.set(y, "logging.progress=false");
    ConfigFiles.set(y, "checkpoint.save_every=2");
    ConfigFiles.set(y, "lora={r: 8, lora_alpha: 16, target_modules: all-linear}");
    ConfigFiles.set(y, "optimizer.lr=1.0e-2");
    return y;
  }

  static float[] logits(Path model, long[] ids) throws Exception {
    try (NDManager root = NDManager.newBaseManager(); CausalLM m = HfCheckpoint.open(model)
        .loadModel(root.newSubManager()); NoGrad g = NoGrad.enter()) {
      NDArray x = root.create(ids).reshape(1, ids.length);
      NDArray pos = root.arange(0, ids.length, 1, ai.djl.ndarray.types.DataType.INT64).reshape(1, ids.length);
      return m.forward(x, pos, null).toFloatArray();
    }
  }

  @Test
  void fourStepsTrainTheAdaptersOnlyAndExportAsPeft() throws Exception {
    Path run = tmp.resolve("lora");
    Map<String, Object> y = config(4);
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
      assertTrue(t.policy().adapters() != null);
      t.train(m -> { }, () -> false);
    }
    List<JsonNode> metrics = JsonLines.readAll(run.resolve("metrics.jsonl"));
    assertEquals(4, metrics.size());
    assertTrue(metrics.stream().anyMatch(m -> m.get("kl").asDouble() > 0), "the KL against the base grows");
    // checkpoints: PEFT folders, not the base weights again
    Path ckpt = run.resolve("checkpoints/step-4");
    assertTrue(Files.isRegularFile(ckpt.resolve("adapter/adapter_config.json")));
    assertFalse(Files.exists(ckpt.resolve("model.safetensors")));
    Map<String, Tensor> adapters = SafeTensors.read(run.resolve("final-adapter/adapter_model.safetensors"));
    assertEquals(2 * 7 * 2, adapters.size()); // A and B, 7 projections, 2 layers
    double bMax = 0;
    for (var e : adapters.entrySet()) {
      if (e.getKey().contains("lora_B")) {
        for (float v : e.getValue().toFloats()) {
          bMax = Math.max(bMax, Math.abs(v));
        }
      }
    }
    assertTrue(bMax > 0, "the adapters moved (B starts at zero)");

    // export: PEFT folder (+ tokenizer files), and the merged model
    Path peft = tmp.resolve("peft");
    Path merged = tmp.resolve("merged");
    assertEquals(0, ModelCommandsTest.run("export", "--run", run.toString(), "--out", peft.toString()).code());
    assertEquals(0, ModelCommandsTest.run("export", "--run", run.toString(), "--out", merged.toString(), "--merge")
        .code());
    JsonNode cfg = new com.fasterxml.jackson.databind.ObjectMapper().readTree(peft.resolve("adapter_config.json")
        .toFile());
    assertEquals("LORA", cfg.get("peft_type").asText());
    assertEquals(8, cfg.get("r").asInt());
    assertEquals(16, cfg.get("lora_alpha").asInt());
    assertTrue(Files.isRegularFile(peft.resolve("tokenizer.json")));
    long[] ids = {5, 9, 2, 44, 17, 3};
    float[] viaAdapter = logits(peft, ids);
    float[] viaMerged = logits(merged, ids);
    float[] viaFinal = logits(run.resolve("final"), ids);
    float[] base = logits(Fixtures.model("tiny-qwen2"), ids);
    double d = 0;
    double moved = 0;
    for (int i = 0; i < ids.length; i++) {
      d = Math.max(d, Math.abs(viaAdapter[i] - viaMerged[i]));
    }
    for (int i = 0; i < viaAdapter.length; i++) {
      d = Math.max(d, Math.abs(viaAdapter[i] - viaMerged[i]));
      moved = Math.max(moved, Math.abs(viaAdapter[i] - base[i]));
    }
    assertTrue(d < 1e-4, "adapter vs merged logits differ by " + d);
    assertTrue(moved > 1e-4, "the trained adapters change the logits");
    assertArrayEquals(viaMerged, viaFinal, 1e-6f); // final/ is the merged model
    // the base itself is untouched (frozen)
    assertArrayEquals(base, logits(Fixtures.model("tiny-qwen2"), ids));
    // grpo forward through the adapter folder writes the same logits
    Path in = tmp.resolve("ids.json");
    Files.writeString(in, "{\"input_ids\": [[5, 9, 2, 44, 17, 3]], \"attention_mask\": [[1, 1, 1, 1, 1, 1]]}");
    Path outFile = tmp.resolve("logits.safetensors");
    var fwd = ModelCommandsTest.run("forward", "--model", peft.toString(), "--input", in.toString(), "--out",
        outFile.toString());
    assertEquals(0, fwd.code(), fwd.err());
    float[] viaCli = SafeTensors.read(outFile).values().iterator().next().toFloats();
    assertArrayEquals(viaAdapter, java.util.Arrays.copyOf(viaCli, viaAdapter.length), 1e-5f);
  }

  @Test
  void aKilledLoraRunResumesToTheSameMetrics() throws Exception {
    Path full = tmp.resolve("full");
    Map<String, Object> y = config(4);
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, full)) {
      t.train(m -> { }, () -> false);
    }
    Path cut = tmp.resolve("cut");
    Map<String, Object> y2 = config(4);
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y2)), y2, cut)) {
      int[] steps = {0};
      t.train(m -> steps[0]++, () -> steps[0] >= 2); // stops after step 2, its checkpoint written
    }
    Map<String, Object> saved = ConfigFiles.read(cut.resolve("config.yaml"));
    try (GrpoTrainer t = GrpoTrainer.resume(TrainConfig.parse(new ConfigMap("", saved)), cut)) {
      assertEquals(2, t.currentStep());
      t.train(m -> { }, () -> false);
    }
    List<JsonNode> a = JsonLines.readAll(full.resolve("metrics.jsonl"));
    List<JsonNode> b = JsonLines.readAll(cut.resolve("metrics.jsonl"));
    assertEquals(a.size(), b.size());
    for (int i = 0; i < a.size(); i++) {
      for (String k : List.of("loss", "reward_mean", "kl", "grad_norm")) {
        assertEquals(a.get(i).get(k).asDouble(), b.get(i).get(k).asDouble(), 1e-6, "step " + (i + 1) + " " + k);
      }
    }
  }
}
