package io.grpo4j.trainer.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.NoGrad;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * What OpenAI clients and evaluation harnesses ask of grpo serve beyond plain sampling: top-N log-probs checked
 * against the model's own distribution, echo with prompt log-probs (max_tokens 0 included), server-sent events whose
 * pieces add up to the non-streamed answer, and continuous batching (a short request overtakes a long one). The same
 * contract holds under request-level batching ({@link RequestBatchingFeaturesTest}), the default on a GPU without CUDA
 * graphs.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OpenAiFeaturesTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP = HttpClient.newHttpClient();
  InferenceServer server;
  String base;
  NDManager root;
  CausalLM model;
  HfTokenizer tok;

  String batching() {
    return "continuous";
  }

  @BeforeAll
  void start() throws Exception {
    Path dir = Fixtures.model("tiny-qwen2");
    server = new InferenceServer(new InferenceEngine(InferenceEngine.Settings.of(dir).withBatching(batching())),
        "tiny").start("127.0.0.1", 0);
    base = "http://127.0.0.1:" + server.port();
    root = NDManager.newBaseManager();
    model = HfCheckpoint.load(dir, root.newSubManager());
    tok = HfTokenizer.load(dir);
  }

  @AfterAll
  void stop() {
    server.close();
    tok.close();
    root.close();
  }

  JsonNode ok(String path, String body) throws Exception {
    HttpResponse<String> r = HTTP.send(request(path, body), HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode(), r.body());
    return JSON.readTree(r.body());
  }

  HttpRequest request(String path, String body) {
    return HttpRequest.newBuilder(URI.create(base + path)).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build();
  }

  /** The events of a streamed answer, [DONE] last. */
  List<String> events(String path, String body) throws Exception {
    HttpResponse<InputStream> r = HTTP.send(request(path, body), HttpResponse.BodyHandlers.ofInputStream());
    assertEquals(200, r.statusCode());
    assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"));
    List<String> out = new ArrayList<>();
    try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.startsWith("data: ")) {
          out.add(line.substring(6));
        } else {
          assertTrue(line.isEmpty(), "unexpected line in the event stream: " + line);
        }
      }
    }
    assertEquals("[DONE]", out.get(out.size() - 1));
    return out;
  }

  /** log_softmax(logits / temperature) of the model at every position of {@code ids}, (T, V). */
  float[][] logProbs(long[] ids, double temperature) {
    try (NoGrad g = NoGrad.enter(); NDManager m = root.newSubManager()) {
      NDArray x = m.create(ids).reshape(1, ids.length);
      NDArray pos = m.arange(0, ids.length, 1, ai.djl.ndarray.types.DataType.INT64).reshape(1, ids.length);
      NDArray logits = model.forward(x, pos, null).get(0).div((float) temperature).logSoftmax(-1);
      int v = (int) logits.getShape().get(1);
      float[] flat = logits.toFloatArray();
      float[][] out = new float[ids.length][];
      for (int t = 0; t < ids.length; t++) {
        out[t] = Arrays.copyOfRange(flat, t * v, (t + 1) * v);
      }
      return out;
    }
  }

  static long[] concat(long[] a, long[] b) {
    long[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  static long[] ids(JsonNode arr) {
    return InferenceServerTest.ids(arr);
  }

  @Test
  void topLogprobsAreTheModelsMostLikelyTokens() throws Exception {
    long[] prompt = {9, 14, 3, 77, 5};
    JsonNode r = ok("/v1/completions", "{\"prompt\":[9,14,3,77,5],\"max_tokens\":8,\"temperature\":0.7,\"seed\":3,"
        + "\"logprobs\":5,\"return_tokens_as_token_ids\":true,\"ignore_eos\":true}");
    JsonNode c = r.get("choices").get(0);
    long[] completion = ids(c.get("token_ids"));
    assertEquals(8, completion.length);
    float[][] want = logProbs(concat(prompt, completion), 0.7);
    JsonNode lp = c.get("logprobs");
    for (int t = 0; t < completion.length; t++) {
      float[] row = want[prompt.length - 1 + t];
      assertEquals(row[(int) completion[t]], lp.get("token_logprobs").get(t).asDouble(), 1e-4, "token " + t);
      assertEquals("token_id:" + completion[t], lp.get("tokens").get(t).asText());
      Integer[] order = new Integer[row.length];
      for (int i = 0; i < row.length; i++) {
        order[i] = i;
      }
      Arrays.sort(order, (a, b) -> Float.compare(row[b], row[a]));
      JsonNode top = lp.get("top_logprobs").get(t);
      // the top 5, plus the sampled token when it is not among them (vLLM's shape)
      boolean sampledInTop = Arrays.asList(order).subList(0, 5).contains((int) completion[t]);
      assertEquals(sampledInTop ? 5 : 6, top.size(), top.toString());
      for (int k = 0; k < 5; k++) {
        JsonNode v = top.get("token_id:" + order[k]);
        assertTrue(v != null, "rank " + k + " token " + order[k] + " missing from " + top);
        assertEquals(row[order[k]], v.asDouble(), 1e-4);
      }
    }
    assertEquals(0, lp.get("text_offset").get(0).asInt());
  }

  @Test
  void chatLogprobsWithTopAlternatives() throws Exception {
    JsonNode r = ok("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":6,"
        + "\"temperature\":0,\"logprobs\":true,\"top_logprobs\":3}");
    JsonNode content = r.get("choices").get(0).get("logprobs").get("content");
    assertEquals(r.get("choices").get(0).get("token_ids").size(), content.size());
    for (JsonNode e : content) {
      JsonNode top = e.get("top_logprobs");
      assertEquals(3, top.size());
      // greedy: the chosen token is the most likely one
      assertEquals(top.get(0).get("logprob").asDouble(), e.get("logprob").asDouble(), 1e-6);
      assertTrue(top.get(0).get("logprob").asDouble() >= top.get(1).get("logprob").asDouble());
      assertTrue(e.get("bytes").isArray());
    }
    HttpResponse<String> bad = HTTP.send(request("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\","
        + "\"content\":\"Hi\"}],\"top_logprobs\":3}"), HttpResponse.BodyHandlers.ofString());
    assertEquals(400, bad.statusCode());
    assertEquals("top_logprobs", JSON.readTree(bad.body()).get("error").get("param").asText());
  }

  @Test
  void echoWithZeroMaxTokensScoresThePrompt() throws Exception {
    String text = "The quick brown fox";
    long[] prompt = tok.encode(text);
    JsonNode r = ok("/v1/completions", "{\"prompt\":" + JSON.writeValueAsString(text) + ",\"max_tokens\":0,"
        + "\"echo\":true,\"logprobs\":2,\"temperature\":0}");
    JsonNode c = r.get("choices").get(0);
    assertEquals(text, c.get("text").asText());
    assertEquals(0, c.get("token_ids").size());
    assertEquals(0, r.get("usage").get("completion_tokens").asInt());
    JsonNode lp = c.get("logprobs");
    assertEquals(prompt.length, lp.get("tokens").size());
    assertTrue(lp.get("token_logprobs").get(0).isNull());
    assertTrue(lp.get("top_logprobs").get(0).isNull());
    float[][] want = logProbs(prompt, 1.0); // prompt log-probs are the raw model's, whatever the temperature
    for (int t = 1; t < prompt.length; t++) {
      assertEquals(want[t - 1][(int) prompt[t]], lp.get("token_logprobs").get(t).asDouble(), 1e-4, "token " + t);
      assertTrue(lp.get("top_logprobs").get(t).size() >= 2);
    }
    // echo with generation: prompt then completion, in text and in log-probs
    JsonNode g = ok("/v1/completions", "{\"prompt\":" + JSON.writeValueAsString(text) + ",\"max_tokens\":4,"
        + "\"echo\":true,\"logprobs\":0,\"seed\":1,\"ignore_eos\":true}").get("choices").get(0);
    assertTrue(g.get("text").asText().startsWith(text));
    assertEquals(prompt.length + 4, g.get("logprobs").get("tokens").size());
    assertTrue(g.get("logprobs").get("top_logprobs").isNull());
  }

  @Test
  void streamedTextEqualsTheNonStreamedText() throws Exception {
    String[] variants = {
        "\"prompt\":[\"Once upon\",\"2+2=\"],\"n\":2,\"max_tokens\":20,\"seed\":7",
        "\"prompt\":[5,6,7],\"max_tokens\":24,\"temperature\":0,\"ignore_eos\":true,\"stop\":[\"e \",\"XYZ\"]",
        "\"prompt\":\"Hello\",\"max_tokens\":12,\"seed\":2,\"logprobs\":2,\"echo\":true",
    };
    for (String v : variants) {
      JsonNode whole = ok("/v1/completions", "{" + v + "}");
      List<String> ev = events("/v1/completions", "{" + v + ",\"stream\":true,"
          + "\"stream_options\":{\"include_usage\":true}}");
      int choices = whole.get("choices").size();
      StringBuilder[] text = new StringBuilder[choices];
      List<List<Double>> logprobs = new ArrayList<>();
      List<List<Integer>> offsets = new ArrayList<>();
      String[] finish = new String[choices];
      for (int i = 0; i < choices; i++) {
        text[i] = new StringBuilder();
        logprobs.add(new ArrayList<>());
        offsets.add(new ArrayList<>());
      }
      JsonNode usage = null;
      for (String e : ev.subList(0, ev.size() - 1)) {
        JsonNode chunk = JSON.readTree(e);
        assertEquals("text_completion", chunk.get("object").asText());
        if (chunk.get("choices").isEmpty()) {
          usage = chunk.get("usage");
          continue;
        }
        JsonNode c = chunk.get("choices").get(0);
        int i = c.get("index").asInt();
        assertTrue(finish[i] == null, "a chunk after choice " + i + " finished");
        text[i].append(c.get("text").asText());
        if (c.get("logprobs") != null && !c.get("logprobs").isNull()) {
          for (JsonNode x : c.get("logprobs").get("token_logprobs")) {
            logprobs.get(i).add(x.isNull() ? null : x.asDouble());
          }
          c.get("logprobs").get("text_offset").forEach(x -> offsets.get(i).add(x.asInt()));
        }
        if (!c.get("finish_reason").isNull()) {
          finish[i] = c.get("finish_reason").asText();
        }
      }
      for (int i = 0; i < choices; i++) {
        JsonNode w = whole.get("choices").get(i);
        assertEquals(w.get("text").asText(), text[i].toString(), v + " choice " + i);
        assertEquals(w.get("finish_reason").asText(), finish[i], v);
        if (!w.get("logprobs").isNull()) {
          List<Double> want = new ArrayList<>();
          for (JsonNode x : w.get("logprobs").get("token_logprobs")) {
            want.add(x.isNull() ? null : x.asDouble());
          }
          assertEquals(want, logprobs.get(i), v);
          List<Integer> wantOffsets = new ArrayList<>();
          w.get("logprobs").get("text_offset").forEach(x -> wantOffsets.add(x.asInt()));
          assertEquals(wantOffsets, offsets.get(i), v);
        }
      }
      assertTrue(usage != null, "no usage chunk: " + ev);
      assertEquals(whole.get("usage"), usage);
    }
  }

  @Test
  void streamedChatStartsWithTheRoleAndEqualsTheReply() throws Exception {
    String body = "\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story\"}],\"max_tokens\":16,\"seed\":5";
    JsonNode whole = ok("/v1/chat/completions", "{" + body + "}");
    List<String> ev = events("/v1/chat/completions", "{" + body + ",\"stream\":true}");
    JsonNode first = JSON.readTree(ev.get(0));
    assertEquals("chat.completion.chunk", first.get("object").asText());
    assertEquals("assistant", first.get("choices").get(0).get("delta").get("role").asText());
    StringBuilder text = new StringBuilder();
    String finish = null;
    for (String e : ev.subList(0, ev.size() - 1)) {
      JsonNode c = JSON.readTree(e).get("choices").get(0);
      text.append(c.get("delta").path("content").asText(""));
      if (!c.get("finish_reason").isNull()) {
        finish = c.get("finish_reason").asText();
      }
    }
    assertEquals(whole.get("choices").get(0).get("message").get("content").asText(), text.toString());
    assertEquals(whole.get("choices").get(0).get("finish_reason").asText(), finish);
    assertFalse(JSON.readTree(ev.get(ev.size() - 2)).has("usage")); // no usage unless asked
  }

  @Test
  void aShortRequestJoinsTheRunningBatchAndLeavesFirst() throws Exception {
    // 32 sequences of 240 tokens: long enough that a 6-token request sent during it must not wait for it
    String longBody = "{\"prompt\":[11,12,13],\"n\":32,\"max_tokens\":240,\"ignore_eos\":true,\"seed\":1}";
    String shortBody = "{\"prompt\":[21,22,23,24,25,26,27,28],\"max_tokens\":6,\"ignore_eos\":true,\"seed\":9}";
    JsonNode shortAlone = ok("/v1/completions", shortBody);
    long[] done = new long[2];
    CompletableFuture<HttpResponse<String>> longOne = HTTP.sendAsync(request("/v1/completions", longBody),
        HttpResponse.BodyHandlers.ofString()).whenComplete((x, e) -> done[0] = System.nanoTime());
    Thread.sleep(60); // the long request is decoding
    JsonNode shortTogether = ok("/v1/completions", shortBody);
    done[1] = System.nanoTime();
    assertFalse(longOne.isDone(), "the short request waited for the long one to finish");
    HttpResponse<String> l = longOne.get();
    assertEquals(200, l.statusCode());
    assertTrue(done[1] < done[0]);
    // same seed, same tokens, whatever it shared the batch with
    assertEquals(shortAlone.get("choices").get(0).get("token_ids"), shortTogether.get("choices").get(0)
        .get("token_ids"));
    JsonNode health = JSON.readTree(HTTP.send(HttpRequest.newBuilder(URI.create(base + "/health")).build(),
        HttpResponse.BodyHandlers.ofString()).body());
    assertEquals("continuous", health.get("batching").asText());
    assertTrue(health.get("mean_batch_rows").asDouble() >= 1.0, health.toString());
    assertTrue(health.get("latency_p50_ms").asDouble() > 0, health.toString());
    assertTrue(health.get("latency_p99_ms").asDouble() >= health.get("latency_p50_ms").asDouble());
  }

  @Test
  void aClientThatHangsUpFreesItsRows() throws Exception {
    HttpResponse<InputStream> r = HTTP.send(request("/v1/completions", "{\"prompt\":[3,4],\"max_tokens\":250,"
        + "\"ignore_eos\":true,\"stream\":true}"), HttpResponse.BodyHandlers.ofInputStream());
    InputStream in = r.body();
    assertTrue(in.read() >= 0); // streaming has begun
    in.close();
    long deadline = System.nanoTime() + 20_000_000_000L;
    long inFlight;
    do {
      Thread.sleep(50);
      inFlight = JSON.readTree(HTTP.send(HttpRequest.newBuilder(URI.create(base + "/health")).build(),
          HttpResponse.BodyHandlers.ofString()).body()).get("in_flight").asLong();
    } while (inFlight > 0 && System.nanoTime() < deadline);
    assertEquals(0, inFlight, "the abandoned stream kept decoding");
  }

  @Test
  void badStreamingAndEchoRequestsAreRefusedBeforeAnyEvent() throws Exception {
    Map<String, String> cases = Map.of(
        "{\"prompt\":[1,2],\"stream\":true,\"n\":0}", "n",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"echo\":true}", "echo",
        "{\"prompt\":[1,2],\"logprobs\":-2}", "logprobs");
    Iterator<Map.Entry<String, String>> it = cases.entrySet().iterator();
    while (it.hasNext()) {
      Map.Entry<String, String> e = it.next();
      String path = e.getKey().contains("messages") ? "/v1/chat/completions" : "/v1/completions";
      HttpResponse<String> r = HTTP.send(request(path, e.getKey()), HttpResponse.BodyHandlers.ofString());
      assertEquals(400, r.statusCode(), r.body());
      ObjectNode err = (ObjectNode) JSON.readTree(r.body()).get("error");
      assertEquals(e.getValue(), err.get("param").asText(), r.body());
    }
  }
}
