package io.grpo4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Cross-checks written in Python (the official openai client, PEFT on transformers) run from the test resources in a
 * venv that scripts/setup-test-resources.sh builds from the local pip index. Without that venv the calling test is
 * skipped, saying which one and why.
 */
public final class PythonScripts {
  private PythonScripts() {}

  /** The venv's interpreter: {@code env} names another, else {@code .test-resources/<venv>/bin/python}. */
  public static Path python(String env, String venv) {
    String given = System.getenv(env);
    Path python = given != null ? Path.of(given)
        : Path.of(System.getProperty("grpo.root", "..")).resolve(".test-resources").resolve(venv).resolve("bin/python");
    assumeTrue(Files.isExecutable(python), python + " is missing: scripts/setup-test-resources.sh builds it where"
        + " pip has a local index (../shared/tools/py-venv)");
    return python;
  }

  /**
   * Runs the resource script with {@code args}; fails unless it exits 0 within {@code seconds}. Returns its output
   * (stdout and stderr).
   */
  public static String run(Path python, String resource, int seconds, String... args) throws IOException,
      InterruptedException {
    Path script = Files.createTempFile("grpo4j-check", ".py");
    try (var in = PythonScripts.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException("no test resource " + resource);
      }
      Files.write(script, in.readAllBytes());
      List<String> cmd = new ArrayList<>(List.of(python.toString(), script.toString()));
      cmd.addAll(List.of(args));
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      // read while it runs: a full pipe would stall the script
      CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> {
        try {
          return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
          return "(output lost: " + e + ")";
        }
      });
      boolean done = p.waitFor(seconds, TimeUnit.SECONDS);
      if (!done) {
        p.destroyForcibly();
      }
      String text = out.join();
      assertTrue(done, resource + " did not finish in " + seconds + " s: " + text);
      assertEquals(0, p.exitValue(), text);
      return text;
    } finally {
      Files.deleteIfExists(script);
    }
  }
}
