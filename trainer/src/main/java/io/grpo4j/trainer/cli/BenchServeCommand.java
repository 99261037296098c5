package io.grpo4j.trainer.cli;

import io.grpo4j.trainer.serve.InferenceEngine;
import io.grpo4j.trainer.serve.InferenceServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Throughput of an OpenAI-compatible server under 1..N concurrent clients. */
@Command(name = "serve", mixinStandardHelpOptions = true,
    description = {"Sends completion requests from 1, 4, 16 ... concurrent clients and prints requests/s, tokens/s",
        "and latency for each. Starts grpo serve in-process on --model, or measures --url (any OpenAI server)."})
public final class BenchServeCommand implements Callable<Integer> {
  @Option(names = "--model", description = "Model folder to serve in-process.")
  Path model;

  @Option(names = "--url", description = "Measure this server instead (e.g. http://127.0.0.1:8000).")
  String url;

  @Option(names = "--clients", split = ",", defaultValue = "1,4,16",
      description = "Concurrency levels (default: ${DEFAULT-VALUE}).")
  int[] clients;

  @Option(names = "--requests", defaultValue = "64", description = "Requests per level (default: ${DEFAULT-VALUE}).")
  int requests;

  @Option(names = "--n", defaultValue = "1", description = "Completions per request (default: ${DEFAULT-VALUE}).")
  int n;

  @Option(names = "--prompt-tokens", defaultValue = "32", description = "Prompt length (default: ${DEFAULT-VALUE}).")
  int promptTokens;

  @Option(names = "--max-tokens", defaultValue = "32", description = "Tokens per completion, always generated"
      + " in full (ignore_eos) (default: ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(names = "--max-batch", defaultValue = "64", description = "In-process server's --max-batch.")
  int maxBatch;

  @Option(names = "--batch-wait-ms", defaultValue = "2", description = "In-process server's --batch-wait-ms: how"
      + " long an idle engine waits for companions before it starts (default: ${DEFAULT-VALUE}, as grpo serve).")
  int batchWaitMs;

  @Option(names = "--threads", defaultValue = "0", description = "In-process server's PyTorch threads (0 = auto).")
  int threads;

  @picocli.CommandLine.Mixin DeviceOptions target;

  @Option(names = "--batching", defaultValue = "auto",
      description = "In-process server's batching: auto, continuous or request (default: ${DEFAULT-VALUE}).")
  String batching;

  @Option(names = "--warmup-s", defaultValue = "10", description = "Seconds of untimed load first, half at the widest"
      + " level and half over the others, so the JIT has compiled the server's, the engine's and the clients' paths"
      + " before any level is timed (default: ${DEFAULT-VALUE}).")
  double warmupSeconds;

  @Option(names = "--json", description = "End with one JSON object of the figures.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    if ((model == null) == (url == null)) {
      throw new UserError("give exactly one of --model DIR (serve it here) or --url URL");
    }
    if (requests < 1 || n < 1 || promptTokens < 1 || maxTokens < 1) {
      throw new UserError("--requests, --n, --prompt-tokens and --max-tokens must be >= 1");
    }
    for (int c : clients) {
      if (c < 1) {
        throw new UserError("--clients: levels must be >= 1, got " + c);
      }
    }
    if (!(warmupSeconds >= 0) || batchWaitMs < 0) {
      throw new UserError("--warmup-s and --batch-wait-ms must be >= 0, got " + warmupSeconds + " and " + batchWaitMs);
    }
    InferenceServer server = null;
    String base = url;
    int vocab = 1000;
    if (model != null) {
      InferenceEngine engine;
      try {
        engine = new InferenceEngine(new InferenceEngine.Settings(model, target.device, target.precision, threads,
            maxBatch, batchWaitMs, batching));
      } catch (IllegalArgumentException e) {
        throw new UserError(e.getMessage());
      }
      server = new InferenceServer(engine, "bench").start("127.0.0.1", 0);
      base = "http://127.0.0.1:" + server.port();
      vocab = server.engine().config().vocabSize();
    }
    HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    try {
      String target = base.endsWith("/") ? base.substring(0, base.length() - 1) : base;
      SplittableRandom rnd = new SplittableRandom(7);
      List<String> bodies = new ArrayList<>();
      for (int i = 0; i < requests; i++) {
        long[] ids = new long[promptTokens];
        for (int t = 0; t < promptTokens; t++) {
          ids[t] = 10 + rnd.nextInt(Math.max(1, vocab - 20));
        }
        bodies.add("{\"prompt\": " + Arrays.toString(ids) + ", \"n\": " + n + ", \"max_tokens\": " + maxTokens
            + ", \"temperature\": 1.0, \"seed\": " + i + ", \"ignore_eos\": true, \"logprobs\": 0}");
      }
      // Warm-up under load, at every level (widest first, half the time): with only a few requests first, the JIT
      // compiler threads took a third of the 2 cores while the levels ran (the same 64-client level went 311 -> 347
      // -> 385 requests/s on three runs in a row), and the single-client path compiled during its own level
      int[] levels = Arrays.stream(clients).boxed().sorted(java.util.Comparator.reverseOrder()).distinct()
          .mapToInt(Integer::intValue).toArray();
      int widest = levels.length == 0 ? 1 : levels[0];
      long warm = 0;
      for (int li = 0; li < levels.length; li++) {
        double share = levels.length == 1 ? 1 : li == 0 ? 0.5 : 0.5 / (levels.length - 1);
        warm += warmUp(http, target, bodies, levels[li], warmupSeconds * share);
      }
      var jit = java.lang.management.ManagementFactory.getCompilationMXBean();
      System.out.printf(Locale.ROOT, "%d requests per level, n = %d, %d prompt + %d completion tokens (after %d"
          + " warm-up requests at every level, %d clients at most)%n", requests, n, promptTokens, maxTokens, warm, widest);
      StringBuilder js = new StringBuilder("{\"levels\": [");
      double rps1 = 0;
      double rpsMax = 0;
      for (int li = 0; li < clients.length; li++) {
        int c = clients[li];
        ExecutorService pool = Executors.newFixedThreadPool(c);
        AtomicInteger next = new AtomicInteger();
        long[] latency = new long[requests];
        long[] tokens = new long[requests];
        var before = server == null ? null : server.engine().stats();
        long jit0 = jit.getTotalCompilationTime();
        long t0 = System.nanoTime();
        List<Future<?>> fs = new ArrayList<>();
        for (int k = 0; k < c; k++) {
          fs.add(pool.submit(() -> {
            int i;
            while ((i = next.getAndIncrement()) < requests) {
              long s = System.nanoTime();
              tokens[i] = send(http, target, bodies.get(i));
              latency[i] = System.nanoTime() - s;
            }
            return null;
          }));
        }
        for (Future<?> f : fs) {
          f.get();
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        long jitMs = jit.getTotalCompilationTime() - jit0;
        pool.shutdown();
        long tok = Arrays.stream(tokens).sum();
        long[] sorted = latency.clone();
        Arrays.sort(sorted);
        double p50 = percentile(sorted, 0.50);
        double p99 = percentile(sorted, 0.99);
        double rps = requests / secs;
        if (c == 1) {
          rps1 = rps;
        }
        rpsMax = Math.max(rpsMax, rps);
        String occ = "";
        String busy = "";
        if (server != null) { // mean sequences per decoding step during this level alone, and the engine's load
          var st = server.engine().stats();
          long steps = st.decodeSteps() - before.decodeSteps();
          occ = steps == 0 ? "" : String.format(Locale.ROOT, "%.1f", (st.rowSteps() - before.rowSteps()) / (double) steps);
          busy = String.format(Locale.ROOT, ", engine busy %.0f%%", 100 * (st.busySeconds() - before.busySeconds()) / secs);
        }
        System.out.printf(Locale.ROOT, "  %3d clients: %7.1f requests/s  %9.0f tokens/s  latency p50 %6.0f ms, p99 %6.0f"
            + " ms%s%s, JIT compiling %d ms%n", c, rps, tok / secs, p50, p99,
            occ.isEmpty() ? "" : ", " + occ + " sequences per step", busy, jitMs);
        js.append(li == 0 ? "" : ", ").append(String.format(Locale.ROOT, "{\"clients\": %d, \"requests_per_s\": %.2f,"
            + " \"tokens_per_s\": %.1f, \"latency_p50_ms\": %.1f, \"latency_p99_ms\": %.1f, \"jit_ms\": %d%s}", c, rps,
            tok / secs, p50, p99, jitMs, occ.isEmpty() ? "" : ", \"occupancy\": " + occ));
      }
      if (rps1 > 0) {
        System.out.printf(Locale.ROOT, "batching: best level is %.1fx the single-client (sequential) rate%n",
            rpsMax / rps1);
      }
      if (server != null) {
        var st = server.engine().stats();
        System.out.printf(Locale.ROOT, "server: %s batching, %d requests, largest batch %d sequences, %.1f sequences"
            + " per decoding step on average%n", st.batching(), st.jobs(), st.maxBatchRows(), st.meanRows());
      }
      js.append(String.format(Locale.ROOT, "], \"n\": %d, \"prompt_tokens\": %d, \"max_tokens\": %d,"
          + " \"warmup_requests\": %d, \"speedup_vs_sequential\": %.2f}", n, promptTokens, maxTokens, warm,
          rps1 > 0 ? rpsMax / rps1 : 0));
      if (json) {
        System.out.println(js);
      }
    } finally {
      if (server != null) {
        server.close();
      }
    }
    return 0;
  }

  /** Untimed requests from {@code clients} threads for about {@code seconds} (at least one each); returns how many. */
  private static long warmUp(HttpClient http, String target, List<String> bodies, int clients, double seconds)
      throws Exception {
    long until = System.nanoTime() + (long) (seconds * 1e9);
    AtomicInteger sent = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(clients);
    try {
      List<Future<?>> fs = new ArrayList<>();
      for (int k = 0; k < clients; k++) {
        int first = k;
        fs.add(pool.submit(() -> {
          int i = first;
          do {
            send(http, target, bodies.get(i % bodies.size()));
            sent.incrementAndGet();
            i += clients;
          } while (System.nanoTime() < until);
          return null;
        }));
      }
      for (Future<?> f : fs) {
        f.get();
      }
    } finally {
      pool.shutdown();
    }
    return sent.get();
  }

  private static double percentile(long[] sorted, double q) {
    return sorted[Math.min(sorted.length - 1, Math.max(0, (int) Math.ceil(q * sorted.length) - 1))] / 1e6;
  }

  /** One request; returns the completion tokens it got. */
  private static long send(HttpClient http, String base, String body) throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new UserError(base + " answered " + r.statusCode() + ": " + r.body());
    }
    var usage = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.body()).path("usage");
    return usage.path("completion_tokens").asLong();
  }
}
