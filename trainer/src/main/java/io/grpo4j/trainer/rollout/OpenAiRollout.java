package io.grpo4j.trainer.rollout;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpo4j.trainer.config.RolloutConfig;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.generation.SamplingParams;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Samples through OpenAI-compatible inference servers: one POST /v1/completions per prompt with the prompt as token
 * ids and n = G, spread over the servers, {@code max_concurrency} in flight. A failed request (connection refused
 * or reset, timeout, 5xx, an answer that is not a well-formed completion) is sent again to another server; the
 * same seed makes the retry sample the same tokens, so a server dying mid-step changes nothing but time. A 4xx
 * means this client or its config is wrong, so it stops the step at once with the server's message.
 */
public final class OpenAiRollout implements RolloutBackend {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final RolloutConfig cfg;
  private final int vocabSize;
  private final HttpClient http;
  private final ServerPool pool;
  private final ExecutorService workers;
  private volatile String model;
  private Stats lastStats = new Stats(0, 0, 0, 0);

  public OpenAiRollout(RolloutConfig cfg, int vocabSize) {
    this.cfg = cfg;
    this.vocabSize = vocabSize;
    this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).version(HttpClient.Version.HTTP_1_1)
        .build();
    this.pool = new ServerPool(cfg.urls(), cfg.server(), http, cfg.retryBackoffS(), Math.max(600, cfg.timeoutS()));
    this.workers = Executors.newFixedThreadPool(cfg.maxConcurrency(), r -> {
      Thread t = new Thread(r, "grpo-rollout-client");
      t.setDaemon(true);
      return t;
    });
    this.model = cfg.model();
  }

  /** A step cannot be sampled: every attempt failed, or a server refused the request as malformed. */
  public static final class RolloutException extends RuntimeException {
    public RolloutException(String message) {
      super(message);
    }
  }

  @Override
  public List<Generation> sample(long[][] prompts, SamplingParams params, int n, long seed, int firstPrompt) {
    long t0 = System.nanoTime();
    AtomicInteger retries = new AtomicInteger();
    String name = modelName();
    // contiguous chunks of prompts, one request each: a server samples a whole chunk in one batch
    int per = cfg.promptsPerRequest() > 0 ? cfg.promptsPerRequest()
        : Math.max(1, (prompts.length + cfg.urls().size() - 1) / cfg.urls().size());
    List<Future<List<Generation>>> futures = new ArrayList<>();
    for (int from = 0; from < prompts.length; from += per) {
      int first = from;
      long[][] chunk = java.util.Arrays.copyOfRange(prompts, from, Math.min(prompts.length, from + per));
      String body = requestBody(name, chunk, params, n, Sampler.promptSeed(seed, firstPrompt + from));
      futures.add(workers.submit(() -> send(body, first, chunk.length, n, params, retries)));
    }
    List<Generation> out = new ArrayList<>(prompts.length * n);
    try {
      for (Future<List<Generation>> f : futures) {
        out.addAll(f.get());
      }
    } catch (ExecutionException e) {
      futures.forEach(f -> f.cancel(true));
      Throwable c = e.getCause();
      throw c instanceof RuntimeException re ? re : new RolloutException(String.valueOf(c));
    } catch (InterruptedException e) {
      futures.forEach(f -> f.cancel(true));
      Thread.currentThread().interrupt();
      throw new RolloutException("interrupted while sampling");
    }
    long tokens = 0;
    for (Generation g : out) {
      tokens += g.completionIds().length;
    }
    lastStats = new Stats(System.nanoTime() - t0, tokens, retries.get(), pool.healthy());
    return out;
  }

  @Override
  public Stats lastStats() {
    return lastStats;
  }

  @Override
  public void syncWeights(Path dir) {
    int loaded = pool.publish(dir);
    if (loaded == 0) {
      System.err.println("rollout: no server could load " + dir + " now; each will be reloaded before its next"
          + " request once it is reachable");
    }
  }

  /**
   * The model id to send: configured, or asked of the first server that answers GET /v1/models. Servers that are
   * still starting (vLLM loads for minutes) are waited for, up to {@code wait_for_servers_s}.
   */
  private String modelName() {
    if (model != null) {
      return model;
    }
    long deadline = System.nanoTime() + (long) (cfg.waitForServersS() * 1e9);
    boolean announced = false;
    while (true) {
      List<String> errors = new ArrayList<>();
      for (ServerPool.Server s : pool.servers()) {
        try {
          HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(s.base + "/v1/models"))
              .timeout(Duration.ofMillis((long) (Math.min(30, cfg.timeoutS()) * 1000))).GET().build(),
              HttpResponse.BodyHandlers.ofString());
          JsonNode id = r.statusCode() == 200 ? JSON.readTree(r.body()).path("data").path(0).path("id") : null;
          if (id != null && id.isTextual()) {
            pool.ok(s);
            model = id.asText();
            return model;
          }
          errors.add(s + ": GET /v1/models answered " + r.statusCode() + " " + ServerPool.abbreviate(r.body()));
        } catch (IOException e) {
          pool.fail(s, e.toString()); // when it answers again it gets the current weights first
          errors.add(s + ": " + e);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new RolloutException("interrupted while waiting for inference servers");
        }
      }
      if (System.nanoTime() > deadline) {
        throw new RolloutException("no inference server answered within rollout.wait_for_servers_s = "
            + cfg.waitForServersS() + " s (rollout.model is not set, so it is asked of them): " + errors);
      }
      if (!announced) {
        System.err.println("rollout: waiting for an inference server at " + cfg.urls() + " ...");
        announced = true;
      }
      try {
        Thread.sleep(Math.max(10, Math.min(2000, (long) (cfg.retryBackoffS() * 1000))));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new RolloutException("interrupted while waiting for inference servers");
      }
    }
  }

  /** One request for prompts (token ids); prompt t of the list samples with seed + t. */
  static String requestBody(String model, long[][] prompts, SamplingParams p, int n, long seed) {
    ObjectNode b = JSON.createObjectNode();
    b.put("model", model);
    ArrayNode list = b.putArray("prompt");
    for (long[] prompt : prompts) {
      ArrayNode ids = list.addArray();
      for (long id : prompt) {
        ids.add(id);
      }
    }
    b.put("n", n);
    b.put("max_tokens", p.maxNewTokens());
    b.put("temperature", p.greedy() ? 0.0 : p.temperature());
    b.put("top_p", p.topP());
    b.put("top_k", p.topK() == 0 ? -1 : p.topK()); // vLLM and SGLang: -1 = off
    b.put("min_p", p.minP());
    b.put("repetition_penalty", p.repetitionPenalty());
    b.put("seed", seed);
    b.put("logprobs", 0); // the sampled token's log-prob, to measure engine mismatch
    b.put("ignore_eos", true); // exactly the trainer's stop tokens below, not the server's own defaults
    ArrayNode stop = b.putArray("stop_token_ids");
    for (int s : p.stopTokenIds()) {
      stop.add(s);
    }
    b.put("return_token_ids", true); // vLLM >= 0.10.2
    b.put("return_tokens_as_token_ids", true); // older vLLM: ids inside logprobs.tokens
    b.put("skip_special_tokens", false);
    b.put("include_stop_str_in_output", true);
    return b.toString();
  }

  private List<Generation> send(String body, int firstPrompt, int prompts, int n, SamplingParams params,
      AtomicInteger retries) throws InterruptedException {
    Set<ServerPool.Server> tried = new HashSet<>();
    List<String> failures = new ArrayList<>();
    long backoff = (long) (cfg.retryBackoffS() * 1000);
    for (int attempt = 0; attempt <= cfg.maxRetries(); attempt++) {
      if (attempt > 0) {
        retries.incrementAndGet();
      }
      ServerPool.Server s = pool.acquire(tried);
      if (s == null) {
        failures.add("no server reachable");
        Thread.sleep(backoff);
        backoff = Math.min(30_000, Math.max(1, backoff * 2));
        continue;
      }
      tried.add(s);
      HttpResponse<String> r;
      try {
        r = http.send(HttpRequest.newBuilder(URI.create(s.base + "/v1/completions"))
            .timeout(Duration.ofMillis((long) (cfg.timeoutS() * 1000))).header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
      } catch (HttpTimeoutException e) {
        String why = "no answer within rollout.timeout_s = " + cfg.timeoutS() + " s";
        pool.fail(s, why);
        failures.add(s + ": " + why);
        continue;
      } catch (IOException e) {
        pool.fail(s, e.toString());
        failures.add(s + ": " + e);
        continue;
      }
      if (r.statusCode() >= 400 && r.statusCode() < 500 && r.statusCode() != 408 && r.statusCode() != 429) {
        throw new RolloutException(s + " refused a completion request (HTTP " + r.statusCode() + "): "
            + ServerPool.abbreviate(r.body()) + (r.statusCode() == 404 ? " (check rollout.model and the URL)" : ""));
      }
      if (r.statusCode() != 200) {
        String why = "HTTP " + r.statusCode() + ": " + ServerPool.abbreviate(r.body());
        pool.fail(s, why);
        failures.add(s + ": " + why);
        continue;
      }
      try {
        List<Generation> gens = parse(r.body(), firstPrompt, prompts, n, params);
        pool.ok(s);
        return gens;
      } catch (IllegalStateException | IOException e) {
        String why = "unusable answer: " + e.getMessage();
        pool.fail(s, why);
        failures.add(s + ": " + why);
      }
    }
    throw new RolloutException("prompts " + firstPrompt + ".." + (firstPrompt + prompts - 1)
        + " could not be sampled after " + (cfg.maxRetries() + 1)
        + " attempts (rollout.max_retries = " + cfg.maxRetries() + "): " + failures);
  }

  /**
   * Reads prompts x n choices (prompt-major, as OpenAI orders a prompt list): token ids (token_ids, or
   * "token_id:N" tokens), finish reasons, sampled-token log-probs.
   */
  List<Generation> parse(String body, int firstPrompt, int prompts, int n, SamplingParams params)
      throws IOException {
    JsonNode root = JSON.readTree(body);
    JsonNode choices = root == null ? null : root.get("choices");
    if (choices == null || !choices.isArray()) {
      throw new IllegalStateException("no \"choices\" array in " + ServerPool.abbreviate(body));
    }
    int total = prompts * n;
    if (choices.size() != total) {
      throw new IllegalStateException("asked for " + prompts + " prompts x n = " + n + " completions, got "
          + choices.size());
    }
    Generation[] out = new Generation[total];
    for (int k = 0; k < total; k++) {
      JsonNode c = choices.get(k);
      int index = c.path("index").asInt(k);
      if (index < 0 || index >= total || out[index] != null) {
        throw new IllegalStateException("choice index " + index + " is out of range or repeated");
      }
      long[] ids = tokenIds(c, k);
      if (ids.length > params.maxNewTokens()) {
        throw new IllegalStateException("choices[" + k + "] has " + ids.length + " tokens, more than max_tokens "
            + params.maxNewTokens());
      }
      for (long id : ids) {
        if (id < 0 || id >= vocabSize) {
          throw new IllegalStateException("choices[" + k + "] has token id " + id + ", outside the vocabulary [0, "
              + vocabSize + ")");
        }
      }
      String reason = c.path("finish_reason").asText("");
      if (!reason.equals("stop") && !reason.equals("length")) {
        throw new IllegalStateException("choices[" + k + "].finish_reason is \"" + reason + "\", not stop or length");
      }
      float[] logps = null;
      JsonNode lp = c.path("logprobs").path("token_logprobs");
      if (lp.isArray() && lp.size() == ids.length) {
        logps = new float[ids.length];
        for (int t = 0; t < ids.length; t++) {
          logps[t] = lp.get(t).isNumber() ? (float) lp.get(t).asDouble() : Float.NaN;
        }
      }
      out[index] = new Generation(firstPrompt + index / n, ids, reason, logps);
    }
    return List.of(out);
  }

  private static long[] tokenIds(JsonNode c, int k) {
    JsonNode ids = c.get("token_ids");
    if (ids != null && ids.isArray()) {
      long[] out = new long[ids.size()];
      for (int i = 0; i < out.length; i++) {
        if (!ids.get(i).isIntegralNumber()) {
          throw new IllegalStateException("choices[" + k + "].token_ids[" + i + "] is not an integer");
        }
        out[i] = ids.get(i).asLong();
      }
      return out;
    }
    JsonNode toks = c.path("logprobs").path("tokens");
    if (toks.isArray()) {
      long[] out = new long[toks.size()];
      for (int i = 0; i < out.length; i++) {
        String t = toks.get(i).asText();
        if (!t.startsWith("token_id:")) {
          throw new IllegalStateException("choices[" + k + "] has no token_ids and logprobs.tokens[" + i + "] is \""
              + t + "\", not token_id:N (vLLM: return_tokens_as_token_ids)");
        }
        try {
          out[i] = Long.parseLong(t.substring(9));
        } catch (NumberFormatException e) {
          throw new IllegalStateException("choices[" + k + "].logprobs.tokens[" + i + "] = \"" + t + "\"");
        }
      }
      return out;
    }
    throw new IllegalStateException("choices[" + k + "] carries no token ids (needs token_ids, or logprobs.tokens as"
        + " token_id:N; vLLM >= 0.10.2 returns them with return_token_ids)");
  }

  @Override
  public void close() {
    workers.shutdownNow();
  }
}
