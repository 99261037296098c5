package io.grpo4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.device.NativeTorch;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a user sees when the GPU set-up is missing or stale: one line each, no stack trace. (On the GPU machine the
 * tests that need a machine without a GPU, or the bundled build, have nothing to show and are skipped.)
 */
class DeviceSetupErrorsTest {
  @TempDir Path tmp;

  @Test
  void envReportsTheBuildItRunsOn() throws Exception {
    ModelCommandsTest.Run r = ModelCommandsTest.run("env", "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode env = new ObjectMapper().readTree(r.out());
    for (String k : List.of("libtorch_version", "libtorch_path", "device", "gpus", "precision")) {
      assertTrue(env.has(k), "grpo env --json lacks " + k + ": " + r.out());
    }
    assertTrue(env.get("libtorch_version").asText().matches("\\d+\\.\\d+\\.\\d+.*"), r.out());
    assertTrue(Files.isDirectory(Path.of(env.get("libtorch_path").asText())), r.out());
  }

  @Test
  void gpuWithoutAUsableGpuSaysHowToGetOne() {
    assumeTrue(Engine.getInstance().getGpuCount() == 0, "this machine has a GPU");
    ModelCommandsTest.Run r = ModelCommandsTest.run("generate", "--model", Fixtures.model("tiny-qwen2").toString(),
        "--device", "gpu", "--prompt-ids", "1,2,3", "--max-new-tokens", "2");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("no usable GPU") && r.err().contains("scripts/setup-pytorch.sh"), r.err());
    assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
  }

  @Test
  void bf16WithTheBundledBuildSaysWhatItNeeds() {
    assumeTrue(!NativeTorch.available(), "this run has the set-up PyTorch, which can do bf16");
    ModelCommandsTest.Run r = ModelCommandsTest.run("generate", "--model", Fixtures.model("tiny-qwen2").toString(),
        "--precision", "bf16", "--prompt-ids", "1,2,3", "--max-new-tokens", "2");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("precision bf16 needs the PyTorch set up by scripts/setup-pytorch.sh"), r.err());
    assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
  }

  @Test
  void aStaleOrMissingSetUpIsRefusedBeforeTheJvmStarts() throws Exception {
    // a copy of scripts/grpo in a scratch checkout whose recorded PyTorch changed, then vanished
    Path repo = Path.of(System.getProperty("grpo.root", "..")).toAbsolutePath().normalize();
    Path root = tmp.resolve("checkout");
    Files.createDirectories(root.resolve("scripts"));
    Files.copy(repo.resolve("scripts/grpo"), root.resolve("scripts/grpo"));
    root.resolve("scripts/grpo").toFile().setExecutable(true);
    Path lib = Files.createDirectories(tmp.resolve("torch/lib"));
    Files.writeString(lib.resolve("libtorch_cpu.so"), "a newer build");
    Path home = Files.createDirectories(root.resolve(".grpo4j/pytorch"));
    Files.writeString(home.resolve("pytorch.env"), "PYTORCH_LIBRARY_PATH='" + lib + "'\nPYTORCH_VERSION='2.13.0'\n"
        + "GRPO4J_TORCH_FULL_VERSION='2.13.0+cpu'\nGRPO4J_TORCH_STAMP='1 1'\nGRPO4J_TORCH_SOURCE='python python3'\n");
    String[] changed = grpo(root);
    assertEquals("2", changed[0], changed[1]);
    assertTrue(changed[1].contains("changed since scripts/setup-pytorch.sh built the JNI")
        && changed[1].contains("--reset"), changed[1]);
    Files.delete(lib.resolve("libtorch_cpu.so"));
    String[] gone = grpo(root);
    assertEquals("2", gone[0], gone[1]);
    assertTrue(gone[1].contains("is gone") && gone[1].contains("scripts/setup-pytorch.sh"), gone[1]);
  }

  @Test
  void setupPytorchNamesWhatIsWrongWithItsArguments() throws Exception {
    Path repo = Path.of(System.getProperty("grpo.root", "..")).toAbsolutePath().normalize();
    String[] noPython = run(repo, repo.resolve("scripts/setup-pytorch.sh").toString(), "--python",
        tmp.resolve("no-such-python").toString());
    assertEquals("2", noPython[0], noPython[1]);
    assertTrue(noPython[1].contains("not found"), noPython[1]);
    String[] noLibtorch = run(repo, repo.resolve("scripts/setup-pytorch.sh").toString(), "--libtorch", tmp.toString());
    assertEquals("2", noLibtorch[0], noLibtorch[1]);
    assertTrue(noLibtorch[1].contains("no lib/libtorch.so inside"), noLibtorch[1]);
  }

  private static String[] grpo(Path root) throws Exception {
    return run(root, root.resolve("scripts/grpo").toString(), "env");
  }

  private static String[] run(Path dir, String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    return new String[] {String.valueOf(p.exitValue()), out};
  }
}
