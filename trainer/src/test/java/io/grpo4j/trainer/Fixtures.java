package io.grpo4j.trainer;

import io.grpo4j.trainer.model.SafeTensors;
import io.grpo4j.trainer.model.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Where the Hugging Face golden fixtures are: {@code GRPO_FIXTURES} if set (relative paths are taken from the
 * repository root), else {@code ../shared/fixtures/hf} next to the repository. Missing fixtures fail the test run;
 * a golden test never skips itself.
 */
public final class Fixtures {
  private Fixtures() {}

  public static Path root() {
    Path repo = Path.of(System.getProperty("grpo.root", "..")).toAbsolutePath().normalize();
    String env = System.getenv("GRPO_FIXTURES");
    Path root = env != null && !env.isBlank()
        ? repo.resolve(env).normalize()
        : Path.of(System.getProperty("grpo.fixtures.default", repo.resolve("../shared/fixtures/hf").toString()))
            .toAbsolutePath().normalize();
    if (!Files.isDirectory(root)) {
      throw new IllegalStateException("golden fixtures not found at " + root
          + " (set GRPO_FIXTURES to the folder holding tiny-qwen2/, tiny-llama/, tiny-qwen3/)");
    }
    return root;
  }

  public static Path model(String name) {
    return root().resolve(name);
  }

  public static Map<String, Tensor> expected(String model) {
    try {
      return SafeTensors.read(model(model).resolve("expected.safetensors"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
