package io.grpo4j.trainer.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.grpo4j.trainer.Fixtures;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * grpo serve driven by the official openai Python client (top log-probs, echo with max_tokens 0, streamed
 * completions and chat equal to the non-streamed answers, usage chunks, errors). The client lives in the venv
 * scripts/setup-test-resources.sh builds from the local pip index ({@code GRPO_OPENAI_PYTHON} names another
 * interpreter); without one the test is skipped, saying so.
 */
class OpenAiPythonClientTest {
  @Test
  void theOfficialOpenAiClientGetsEveryFeature() throws Exception {
    Path root = Path.of(System.getProperty("grpo.root", ".."));
    String env = System.getenv("GRPO_OPENAI_PYTHON");
    Path python = env != null ? Path.of(env) : root.resolve(".test-resources/openai-venv/bin/python");
    assumeTrue(Files.isExecutable(python), python + " is missing: scripts/setup-test-resources.sh builds it where"
        + " pip has a local index (../shared/tools/py-venv)");
    Path script = Files.createTempFile("openai_client_check", ".py");
    try (var in = getClass().getResourceAsStream("/serve/openai_client_check.py")) {
      Files.write(script, in.readAllBytes());
    }
    try (InferenceServer server = new InferenceServer(new InferenceEngine(InferenceEngine.Settings.of(
        Fixtures.model("tiny-qwen2"))), "tiny").start("127.0.0.1", 0)) {
      Process p = new ProcessBuilder(python.toString(), script.toString(), "http://127.0.0.1:" + server.port(),
          "tiny", "Once upon a time").redirectErrorStream(true).start();
      assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the openai client did not finish in 120 s");
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertEquals(0, p.exitValue(), out);
      assertTrue(out.contains("all checks passed"), out);
    } finally {
      Files.deleteIfExists(script);
    }
  }
}
