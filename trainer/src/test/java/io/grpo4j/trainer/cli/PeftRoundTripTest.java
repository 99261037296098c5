package io.grpo4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.PythonScripts;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.grpo.GrpoTrainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A LoRA run's export through Python: PEFT loads the adapter folder on the base in transformers with logits within
 * 1e-4 of transformers on the --merge export and of {@code grpo forward} on the adapter folder. The interpreter is
 * the venv scripts/setup-test-resources.sh builds from the local pip index (GRPO_PEFT_PYTHON names another); without
 * one the test is skipped, saying so.
 */
class PeftRoundTripTest {
  @TempDir Path tmp;

  @Test
  void peftLoadsTheExportedAdapterWithTheSameLogits() throws Exception {
    Path python = PythonScripts.python("GRPO_PEFT_PYTHON", "peft-venv");
    Path run = tmp.resolve("lora");
    Map<String, Object> y = LoraRunTest.config(4);
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
      t.train(m -> { }, () -> false);
    }
    Path peft = tmp.resolve("peft");
    Path merged = tmp.resolve("merged");
    assertEquals(0, ModelCommandsTest.run("export", "--run", run.toString(), "--out", peft.toString()).code());
    assertEquals(0, ModelCommandsTest.run("export", "--run", run.toString(), "--out", merged.toString(), "--merge",
        "--dtype", "fp32").code());
    String ids = "5,9,2,44,17,3,8,100";
    Path in = tmp.resolve("ids.json");
    Files.writeString(in, "{\"input_ids\": [[" + ids + "]], \"attention_mask\": [[1, 1, 1, 1, 1, 1, 1, 1]]}");
    Path logits = tmp.resolve("grpo-logits.safetensors");
    var fwd = ModelCommandsTest.run("forward", "--model", peft.toString(), "--input", in.toString(), "--out",
        logits.toString());
    assertEquals(0, fwd.code(), fwd.err());
    String out = PythonScripts.run(python, "/lora/peft_check.py", 300, Fixtures.model("tiny-qwen2").toString(),
        peft.toString(), merged.toString(), logits.toString(), ids);
    assertTrue(out.contains("PEFT round trip passed"), out);
    System.out.println(out);
  }
}
