package io.grpo4j.trainer.config;

import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import java.net.URI;
import java.util.List;

/**
 * Where a run's completions come from. {@code local}: the policy samples in this process. {@code openai}: every
 * prompt of a step goes (with n = G) to one of {@code urls}, OpenAI-compatible inference servers (grpo serve, vLLM,
 * SGLang); every {@code sync_every} steps the policy is written as an HF folder to {@code sync_dir} and each server
 * reloads it.
 *
 * @param server which reload call the servers understand: grpo and sglang take POST /update_weights_from_disk;
 *     vllm takes POST /collective_rpc {"method": "reload_weights"} (dev mode) and re-reads the folder it serves
 * @param model the model id sent with each request; null = the first id of GET /v1/models
 * @param maxConcurrency requests in flight at once, over all servers
 * @param timeoutS per request; a slower server counts as failed and the request goes elsewhere
 * @param maxRetries attempts after the first before the step fails
 * @param retryBackoffS first wait before retrying when no server is usable; doubles per failure, at most 30 s
 * @param syncDir the folder servers load weights from; null = {@code <run>/rollout-weights}
 * @param syncDtype dtype of the synced weights: auto (the model's own), bf16, fp16, fp32
 * @param promptsPerRequest prompts sent in one request (a list prompt, each with n = G); 0 = the step's prompts
 *     split evenly over the servers, so each samples its share in one batch
 * @param waitForServersS at the first request, how long to wait for a server to come up (vLLM takes minutes to load)
 * @param tisCorrection multiply each token's policy-gradient term by min(exp(logp_trainer - logp_server), tis_cap)
 *     (truncated importance sampling, as TRL and verl do against vLLM)
 */
public record RolloutConfig(
    String backend,
    List<String> urls,
    String model,
    String server,
    int maxConcurrency,
    double timeoutS,
    int maxRetries,
    double retryBackoffS,
    String weightSync,
    int syncEvery,
    String syncDir,
    String syncDtype,
    boolean tisCorrection,
    double tisCap,
    double waitForServersS,
    int promptsPerRequest) {

  public static RolloutConfig local() {
    return new RolloutConfig("local", List.of(), null, "grpo", 16, 600, 5, 1.0, "disk", 1, null, "auto", false, 3.0, 300, 0);
  }

  public boolean remote() {
    return backend.equals("openai");
  }

  public static RolloutConfig parse(ConfigMap r) {
    String backend = r.oneOf("backend", "local", "local", "openai");
    List<String> urls = r.strings("urls", List.of());
    for (String u : urls) {
      try {
        URI uri = URI.create(u);
        if (uri.getScheme() == null || !(uri.getScheme().equals("http") || uri.getScheme().equals("https"))
            || uri.getHost() == null) {
          throw new IllegalArgumentException("not an http(s) URL");
        }
      } catch (IllegalArgumentException e) {
        throw new ConfigException(r.key("urls") + ": \"" + u + "\" is not a server URL like http://host:8000");
      }
    }
    if (backend.equals("openai") && urls.isEmpty()) {
      throw new ConfigException(r.key("urls") + ": backend openai needs at least one server URL, e.g."
          + " [http://127.0.0.1:8000]");
    }
    RolloutConfig c = new RolloutConfig(backend, List.copyOf(urls), r.string("model", null),
        r.oneOf("server", "grpo", "grpo", "sglang", "vllm"),
        r.integer("max_concurrency", 16, 1, 4096),
        r.number("timeout_s", 600, 0.1, 86400),
        r.integer("max_retries", 5, 0, 1000),
        r.number("retry_backoff_s", 1.0, 0, 600),
        r.oneOf("weight_sync", "disk", "disk"),
        r.integer("sync_every", 1, 1, Integer.MAX_VALUE),
        r.string("sync_dir", null),
        r.oneOf("sync_dtype", "auto", "auto", "bf16", "fp16", "fp32"),
        r.bool("tis_correction", true), // TRL's vllm_importance_sampling_correction default
        r.number("tis_cap", 3.0, 1.0, 1e6), // TRL's vllm_importance_sampling_cap default
        r.number("wait_for_servers_s", 300, 0, 86400),
        r.integer("prompts_per_request", 0, 0, 1 << 20));
    r.finish();
    return c;
  }
}
