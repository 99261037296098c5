package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.cli.GrpoCli;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.run.JsonLines;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GRPO with {@code rollout.backend: openai} against {@code grpo serve} running in other processes: the same
 * tokens, rewards and metrics as the in-process run with the same seed, weights synced every step, and a server
 * SIGKILLed in the middle of a step without losing or changing anything.
 */
class RemoteRolloutTrainingTest {
  @TempDir Path tmp;
  final List<Process> servers = new ArrayList<>();

  @AfterEach
  void killServers() throws Exception {
    for (Process p : servers) {
      p.destroyForcibly();
      p.waitFor(10, TimeUnit.SECONDS);
    }
  }

  /** Starts {@code grpo serve} on a free port in a new JVM; returns its base URL once it listens. */
  String serve(String name) throws Exception {
    List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"), GrpoCli.class.getName(), "serve",
        "--model", Fixtures.model("tiny-qwen2").toString(), "--port", "0", "--served-model-name", "policy");
    Process p = new ProcessBuilder(cmd).redirectError(tmp.resolve(name + ".err").toFile()).start();
    servers.add(p);
    BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    Pattern listening = Pattern.compile("on (http://\\S+) ");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    String line;
    while ((line = out.readLine()) != null && System.nanoTime() < deadline) {
      Matcher m = listening.matcher(line);
      if (m.find()) {
        return m.group(1);
      }
    }
    throw new AssertionError("grpo serve did not start: " + java.nio.file.Files.readString(tmp.resolve(name
        + ".err")));
  }

  Map<String, Object> config(int steps, List<String> urls) throws Exception {
    Path repo = Path.of(System.getProperty("grpo.root", ".."));
    Map<String, Object> y = ConfigFiles.read(repo.resolve("configs/smoke.yaml"));
    y.put("model", Fixtures.model("tiny-qwen2").toString());
    ConfigFiles.set(y, "training.steps=" + steps);
    ConfigFiles.set(y, "logging.progress=false");
    ConfigFiles.set(y, "logging.samples_per_step=1000");
    ConfigFiles.set(y, "eval.every=0");
    ConfigFiles.set(y, "checkpoint.save_every=0");
    if (urls != null) {
      ConfigFiles.set(y, "rollout.backend=openai");
      ConfigFiles.set(y, "rollout.urls=" + urls);
      ConfigFiles.set(y, "rollout.sync_dtype=fp32");
      ConfigFiles.set(y, "rollout.retry_backoff_s=0.05");
    }
    return y;
  }

  Path train(String name, Map<String, Object> y) throws Exception {
    Path run = tmp.resolve(name);
    try (GrpoTrainer t = GrpoTrainer.start(TrainConfig.parse(new ConfigMap("", y)), y, run)) {
      t.train(m -> { }, () -> false);
    }
    return run;
  }

  static List<String> completions(Path run) throws Exception {
    List<String> out = new ArrayList<>();
    for (JsonNode s : JsonLines.readAll(run.resolve("samples.jsonl"))) {
      out.add(s.get("step") + " " + s.get("completion").asText() + " " + s.get("reward"));
    }
    return out;
  }

  @Test
  void trainingAgainstGrpoServeMatchesLocalTraining() throws Exception {
    String url = serve("serve");
    Path local = train("local", config(3, null));
    Path remote = train("remote", config(3, List.of(url)));
    assertEquals(completions(local), completions(remote), "seeded local and remote runs sampled different tokens");
    List<JsonNode> lm = JsonLines.readAll(local.resolve("metrics.jsonl"));
    List<JsonNode> rm = JsonLines.readAll(remote.resolve("metrics.jsonl"));
    assertEquals(3, rm.size());
    for (int i = 0; i < 3; i++) {
      Set<String> missing = new HashSet<>();
      for (Iterator<String> it = lm.get(i).fieldNames(); it.hasNext(); ) {
        String k = it.next();
        if (!rm.get(i).has(k)) {
          missing.add(k);
        }
      }
      assertTrue(missing.isEmpty(), "remote metrics lack " + missing);
      assertEquals(lm.get(i).get("reward_mean").asDouble(), rm.get(i).get("reward_mean").asDouble(), 1e-12);
      assertEquals(lm.get(i).get("loss").asDouble(), rm.get(i).get("loss").asDouble(), 1e-4);
      assertEquals(lm.get(i).get("kl").asDouble(), rm.get(i).get("kl").asDouble(), 1e-4);
      assertTrue(rm.get(i).get("rollout/logp_diff_max").asDouble() < 1e-3, rm.get(i).toString());
      assertEquals(0, rm.get(i).get("rollout/retries").asInt());
    }
    // the server was told to load the policy at the start and after every step, from the run's folder
    JsonNode health = new ObjectMapper().readTree(HttpClient.newHttpClient().send(HttpRequest.newBuilder(
        URI.create(url + "/health")).build(), HttpResponse.BodyHandlers.ofString()).body());
    assertEquals(4, health.get("weights_version").asInt());
    assertEquals(remote.resolve("rollout-weights").toAbsolutePath().normalize().toString(),
        health.get("weights").asText());
  }

  @Test
  void aServerKilledMidStepDoesNotChangeOrLoseTheStep() throws Exception {
    String a = serve("a");
    String b = serve("b");
    Map<String, Object> y = config(1, List.of(a, b));
    ConfigFiles.set(y, "grpo.prompts_per_step=12");
    ConfigFiles.set(y, "grpo.group_size=8");
    ConfigFiles.set(y, "sampling.max_completion_length=40");
    ConfigFiles.set(y, "prompt.template=plain"); // short prompts: the step is about sampling, not training
    Process doomed = servers.get(0);
    HttpClient http = HttpClient.newHttpClient();
    Thread killer = new Thread(() -> {
      try {
        while (true) { // SIGKILL once server a is working on requests of the step
          String h = http.send(HttpRequest.newBuilder(URI.create(a + "/health")).build(),
              HttpResponse.BodyHandlers.ofString()).body();
          if (new ObjectMapper().readTree(h).get("in_flight").asInt() > 0) {
            doomed.destroyForcibly();
            return;
          }
          Thread.sleep(5);
        }
      } catch (Exception e) {
        // a is gone
      }
    });
    killer.start();
    Path remote = train("killed", y);
    killer.join();
    assertTrue(!doomed.isAlive());
    JsonNode m = JsonLines.readAll(remote.resolve("metrics.jsonl")).get(0);
    assertTrue(m.get("rollout/retries").asInt() >= 1, m.toString());
    assertEquals(1, m.get("rollout/healthy_servers").asInt(), m.toString());
    Map<String, Object> yl = config(1, null);
    ConfigFiles.set(yl, "grpo.prompts_per_step=12");
    ConfigFiles.set(yl, "grpo.group_size=8");
    ConfigFiles.set(yl, "sampling.max_completion_length=40");
    ConfigFiles.set(yl, "prompt.template=plain");
    Path local = train("reference", yl);
    assertEquals(completions(local), completions(remote));
  }
}
