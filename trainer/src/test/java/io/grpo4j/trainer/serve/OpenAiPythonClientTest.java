package io.grpo4j.trainer.serve;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.PythonScripts;
import java.nio.file.Path;
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
    Path python = PythonScripts.python("GRPO_OPENAI_PYTHON", "openai-venv");
    try (InferenceServer server = new InferenceServer(new InferenceEngine(InferenceEngine.Settings.of(
        Fixtures.model("tiny-qwen2"))), "tiny").start("127.0.0.1", 0)) {
      String out = PythonScripts.run(python, "/serve/openai_client_check.py", 120,
          "http://127.0.0.1:" + server.port(), "tiny", "Once upon a time");
      assertTrue(out.contains("all checks passed"), out);
    }
  }
}
