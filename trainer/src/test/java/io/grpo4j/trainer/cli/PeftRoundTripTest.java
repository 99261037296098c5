package io.grpo4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.grpo.GrpoTrainer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
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
    Path root = Path.of(System.getProperty("grpo.root", ".."));
    String env = System.getenv("GRPO_PEFT_PYTHON");
    Path python = env != null ? Path.of(env) : root.resolve(".test-resources/peft-venv/bin/python");
    assumeTrue(Files.isExecutable(python), python + " is missing: scripts/setup-test-resources.sh builds it where"
        + " pip has a local index (../shared/tools/py-venv)");
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
    Path script = tmp.resolve("peft_check.py");
    try (var s = getClass().getResourceAsStream("/lora/peft_check.py")) {
      Files.write(script, s.readAllBytes());
    }
    Process p = new ProcessBuilder(python.toString(), script.toString(), Fixtures.model("tiny-qwen2").toString(),
        peft.toString(), merged.toString(), logits.toString(), ids).redirectErrorStream(true).start();
    assertTrue(p.waitFor(300, TimeUnit.SECONDS), "the PEFT check did not finish in 300 s");
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("PEFT round trip passed"), out);
    System.out.println(out);
  }
}
