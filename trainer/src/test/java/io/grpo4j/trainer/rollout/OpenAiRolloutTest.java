package io.grpo4j.trainer.rollout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.sun.net.httpserver.HttpServer;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.config.RolloutConfig;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.serve.InferenceEngine;
import io.grpo4j.trainer.serve.InferenceServer;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The trainer's client for inference servers, against in-process grpo serve instances and deliberately broken
 * servers: same tokens as local sampling, retries on garbage, on timeouts and on a server that dies, clear errors
 * when nothing works, weights re-sent to a server that comes back.
 */
class OpenAiRolloutTest {
  static Path dir;
  static NDManager root;
  static CausalLM model;
  static HfTokenizer tok;
  static InferenceServer good;
  static SamplingParams params;
  static long[][] prompts = {{4, 8, 15}, {16, 23, 42, 7}, {1, 2}, {99, 100, 101}};

  @BeforeAll
  static void start() throws Exception {
    dir = Fixtures.model("tiny-qwen2");
    root = NDManager.newBaseManager();
    model = HfCheckpoint.load(dir, root.newSubManager());
    tok = HfTokenizer.load(dir);
    good = serve(0);
    params = new SamplingParams(10, false, 1.0, 1.0, 0, 0.0, 1.0, tok.stopTokenIds());
  }

  @AfterAll
  static void stop() throws Exception {
    good.close();
    tok.close();
    root.close();
  }

  static InferenceServer serve(int port) throws IOException {
    return new InferenceServer(new InferenceEngine(InferenceEngine.Settings.of(dir)), "tiny").start("127.0.0.1", port);
  }

  static String url(InferenceServer s) {
    return "http://127.0.0.1:" + s.port();
  }

  /** Model id asked of the servers (GET /v1/models), as when rollout.model is not set. */
  static RolloutConfig cfg(List<String> urls, double timeoutS, int retries) {
    return named(null, urls, timeoutS, retries);
  }

  /** With rollout.model set, so a broken server is first met on a completion request. */
  static RolloutConfig named(String model, List<String> urls, double timeoutS, int retries) {
    return new RolloutConfig("openai", urls, model, "grpo", 8, timeoutS, retries, 0.01, "disk", 1, null, "auto", true,
        3.0, 5, 0);
  }

  /** A server that answers every request with {@code body} after {@code delayMs}, and /health with 200. */
  static HttpServer fake(String body, int status, long delayMs, AtomicInteger hits) throws IOException {
    HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    s.createContext("/", ex -> {
      try {
        if (!ex.getRequestURI().getPath().equals("/health")) {
          hits.incrementAndGet();
          Thread.sleep(delayMs);
        }
        byte[] b = (ex.getRequestURI().getPath().equals("/health") ? "{}" : body).getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(ex.getRequestURI().getPath().equals("/health") ? 200 : status, b.length);
        ex.getResponseBody().write(b);
      } catch (InterruptedException | IOException e) {
        // the client hung up
      } finally {
        ex.close();
      }
    });
    s.setExecutor(java.util.concurrent.Executors.newCachedThreadPool());
    s.start();
    return s;
  }

  static String url(HttpServer s) {
    return "http://127.0.0.1:" + s.getAddress().getPort();
  }

  static void assertSame(List<Generation> want, List<Generation> got) {
    assertEquals(want.size(), got.size());
    for (int i = 0; i < want.size(); i++) {
      assertEquals(want.get(i).promptIndex(), got.get(i).promptIndex());
      assertArrayEquals(want.get(i).completionIds(), got.get(i).completionIds(), "completion " + i);
      assertEquals(want.get(i).finishReason(), got.get(i).finishReason(), "completion " + i);
    }
  }

  @Test
  void remoteSamplingEqualsLocalSamplingForTheSameSeed() {
    List<Generation> local = new LocalRollout(model, tok.padTokenId()).sample(prompts, params, 3, 77);
    try (OpenAiRollout r = new OpenAiRollout(cfg(List.of(url(good)), 60, 2), model.config().vocabSize())) {
      List<Generation> remote = r.sample(prompts, params, 3, 77);
      assertSame(local, remote);
      for (Generation g : remote) {
        assertNotNull(g.logprobs());
        assertEquals(g.completionIds().length, g.logprobs().length);
      }
      assertEquals(0, r.lastStats().retries());
      assertEquals(local.stream().mapToLong(g -> g.completionIds().length).sum(), r.lastStats().tokens());
    }
  }

  @Test
  void garbageAnswersAreRetriedElsewhereAndTheServerIsTakenOut() throws Exception {
    List<Generation> want = new LocalRollout(model, tok.padTokenId()).sample(prompts, params, 2, 5);
    AtomicInteger hits = new AtomicInteger();
    for (String garbage : List.of("this is not json", "{\"choices\": 3}", "{\"choices\": [{\"text\": \"hi\"}]}",
        "{\"choices\": [{\"token_ids\": [1, 2], \"finish_reason\": \"stop\"}, {\"token_ids\": [1e9],"
            + " \"finish_reason\": \"stop\"}]}")) {
      HttpServer bad = fake(garbage, 200, 0, hits);
      try (OpenAiRollout r = new OpenAiRollout(named("tiny", List.of(url(bad), url(good)), 60, 3),
          model.config().vocabSize())) {
        assertSame(want, r.sample(prompts, params, 2, 5));
        assertTrue(r.lastStats().retries() >= 1, garbage);
        assertEquals(1, r.lastStats().healthyServers(), garbage);
      } finally {
        bad.stop(0);
      }
    }
    assertTrue(hits.get() >= 4);
  }

  @Test
  void aServerSlowerThanTheTimeoutIsAbandoned() throws Exception {
    List<Generation> want = new LocalRollout(model, tok.padTokenId()).sample(prompts, params, 2, 9);
    HttpServer slow = fake("{}", 200, 20_000, new AtomicInteger());
    try (OpenAiRollout r = new OpenAiRollout(named("tiny", List.of(url(slow), url(good)), 1.0, 3),
        model.config().vocabSize())) {
      long t0 = System.nanoTime();
      assertSame(want, r.sample(prompts, params, 2, 9));
      double secs = (System.nanoTime() - t0) / 1e9;
      assertTrue(secs < 10, "took " + secs + " s");
      assertTrue(r.lastStats().retries() >= 1);
    } finally {
      slow.stop(0);
    }
  }

  @Test
  void aServerStoppedMidStepLosesNothing() throws Exception {
    SamplingParams longer = new SamplingParams(48, false, 1.0, 1.0, 0, 0.0, 1.0, new int[0]);
    long[][] many = new long[12][];
    for (int i = 0; i < many.length; i++) {
      many[i] = new long[] {3 + i, 7, 11 + i};
    }
    List<Generation> want = new LocalRollout(model, tok.padTokenId()).sample(many, longer, 8, 31);
    InferenceServer doomed = serve(0);
    try (OpenAiRollout r = new OpenAiRollout(named("tiny", List.of(url(doomed), url(good)), 60, 4),
        model.config().vocabSize())) {
      Thread killer = new Thread(() -> {
        while (doomed.engine().stats().batches() == 0 && doomed.engine().stats().jobs() == 0) {
          Thread.onSpinWait();
        }
        doomed.close(); // requests queued or running there fail; their retries go to the other server
      });
      killer.start();
      List<Generation> got = r.sample(many, longer, 8, 31);
      killer.join();
      assertSame(want, got);
      assertTrue(r.lastStats().retries() >= 1, "retries " + r.lastStats().retries());
    }
  }

  @Test
  void nothingReachableOrARefusedRequestFailsTheStepWithTheReason() throws Exception {
    try (OpenAiRollout r = new OpenAiRollout(cfg(List.of("http://127.0.0.1:9"), 5, 2), 1000)) {
      // waits wait_for_servers_s (5 s here) for a server to come up, then names what it tried
      RuntimeException e = assertThrows(RuntimeException.class, () -> r.sample(prompts, params, 2, 1));
      assertTrue(e.getMessage().contains("127.0.0.1:9"), e.getMessage());
    }
    RolloutConfig wrongModel = new RolloutConfig("openai", List.of(url(good)), "no-such-model", "grpo", 4, 30, 3,
        0.01, "disk", 1, null, "auto", true, 3.0, 5, 0);
    try (OpenAiRollout r = new OpenAiRollout(wrongModel, model.config().vocabSize())) {
      OpenAiRollout.RolloutException e = assertThrows(OpenAiRollout.RolloutException.class,
          () -> r.sample(prompts, params, 2, 1));
      assertTrue(e.getMessage().contains("404") && e.getMessage().contains("rollout.model"), e.getMessage());
    }
  }

  @Test
  void aServerThatRestartsGetsTheCurrentWeightsBeforeItsNextRequest() throws Exception {
    InferenceServer a = serve(0);
    int port = a.port();
    Path weights = dir; // any valid folder: what matters is that it is sent again
    try (OpenAiRollout r = new OpenAiRollout(cfg(List.of(url(a)), 30, 12), model.config().vocabSize())) {
      r.syncWeights(weights);
      assertEquals(1, a.engine().weightsVersion());
      a.close();
      InferenceServer[] back = new InferenceServer[1];
      Thread restart = new Thread(() -> {
        try {
          Thread.sleep(500);
          back[0] = serve(port); // comes back with its initial weights
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      });
      restart.start();
      try {
        List<Generation> got = r.sample(prompts, params, 2, 3); // fails until the server is back, then retries
        restart.join();
        assertEquals(8, got.size());
        assertEquals(1, back[0].engine().weightsVersion(), "the restarted server was not given the weights again");
      } finally {
        restart.join();
        if (back[0] != null) {
          back[0].close();
        }
      }
    }
  }
}
