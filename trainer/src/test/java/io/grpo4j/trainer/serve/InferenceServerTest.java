package io.grpo4j.trainer.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.grpo.CompletionBatch;
import io.grpo4j.trainer.grpo.PolicyLogProbs;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.NoGrad;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** grpo serve in-process on tiny-qwen2: the OpenAI routes, their errors, batching, and weight reload. */
class InferenceServerTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP = HttpClient.newHttpClient();
  static InferenceServer server;
  static String base;
  static NDManager root;
  static CausalLM model;
  static HfTokenizer tok;

  @TempDir static Path tmp;

  @BeforeAll
  static void start() throws Exception {
    Path dir = Fixtures.model("tiny-qwen2");
    server = new InferenceServer(new InferenceEngine(InferenceEngine.Settings.of(dir)), "tiny").start("127.0.0.1", 0);
    base = "http://127.0.0.1:" + server.port();
    root = NDManager.newBaseManager();
    model = HfCheckpoint.load(dir, root.newSubManager());
    tok = HfTokenizer.load(dir);
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    tok.close();
    root.close();
  }

  static HttpResponse<String> post(String path, String body) throws Exception {
    return HTTP.send(HttpRequest.newBuilder(URI.create(base + path)).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
  }

  static JsonNode ok(String path, String body) throws Exception {
    HttpResponse<String> r = post(path, body);
    assertEquals(200, r.statusCode(), r.body());
    return JSON.readTree(r.body());
  }

  static long[] ids(JsonNode arr) {
    long[] out = new long[arr.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = arr.get(i).asLong();
    }
    return out;
  }

  @Test
  void seededCompletionsMatchTheInProcessSamplerAndTheTrainersLogProbs() throws Exception {
    long[] prompt = {9, 14, 3, 77, 5};
    long seed = 12345;
    JsonNode r = ok("/v1/completions", "{\"model\":\"tiny\",\"prompt\":[9,14,3,77,5],\"n\":4,\"max_tokens\":12,"
        + "\"temperature\":0.8,\"seed\":" + Sampler.promptSeed(seed, 0) + ",\"logprobs\":0}");
    SamplingParams p = new SamplingParams(12, false, 0.8, 1.0, 0, 0.0, 1.0, tok.stopTokenIds());
    List<Generation> local = new Sampler(model, tok.padTokenId()).generate(new long[][] {prompt}, p, 4, seed);
    JsonNode choices = r.get("choices");
    assertEquals(4, choices.size());
    long[][] completions = new long[4][];
    for (int j = 0; j < 4; j++) {
      JsonNode c = choices.get(j);
      assertEquals(j, c.get("index").asInt());
      completions[j] = ids(c.get("token_ids"));
      assertArrayEquals(local.get(j).completionIds(), completions[j], "choice " + j);
      assertEquals(local.get(j).finishReason(), c.get("finish_reason").asText());
      assertEquals(completions[j].length, c.get("logprobs").get("token_logprobs").size());
    }
    assertEquals(5, r.get("usage").get("prompt_tokens").asInt());
    // the returned log-probs are what the trainer computes for the same tokens (full forward, logits / T)
    long[][] prompts = {prompt, prompt, prompt, prompt};
    CompletionBatch cb = new CompletionBatch(prompts, completions, tok.padTokenId());
    try (NoGrad g = NoGrad.enter(); NDManager m = root.newSubManager()) {
      float[] lp = PolicyLogProbs.compute(model, m, cb, 0.8, false).logps().toFloatArray();
      for (int j = 0; j < 4; j++) {
        for (int t = 0; t < completions[j].length; t++) {
          double server = choices.get(j).get("logprobs").get("token_logprobs").get(t).asDouble();
          assertEquals(lp[j * cb.completionLength() + t], server, 1e-4, "choice " + j + " token " + t);
        }
      }
    }
  }

  @Test
  void textPromptsListsAndChat() throws Exception {
    JsonNode r = ok("/v1/completions", "{\"prompt\":[\"Hello\",\"2+2=\"],\"n\":2,\"max_tokens\":4,\"seed\":1}");
    assertEquals(4, r.get("choices").size()); // prompt-major: 2 prompts x n = 2
    JsonNode chat = ok("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
        + "\"max_tokens\":6,\"temperature\":0,\"logprobs\":true}");
    JsonNode c = chat.get("choices").get(0);
    assertEquals("assistant", c.get("message").get("role").asText());
    assertEquals("chat.completion", chat.get("object").asText());
    assertEquals(c.get("token_ids").size(), c.get("logprobs").get("content").size());
    // greedy chat equals greedy on the rendered template
    String rendered = tok.applyChatTemplate(List.of(new io.grpo4j.trainer.tokenizer.ChatTemplate.Message("user",
        "Hi")), true);
    List<Generation> local = new Sampler(model, tok.padTokenId()).generate(new long[][] {tok.encode(rendered)},
        SamplingParams.greedy(6).withStopTokenIds(tok.stopTokenIds()), 1);
    assertArrayEquals(local.get(0).completionIds(), ids(c.get("token_ids")));
    JsonNode models = JSON.readTree(HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/models")).build(),
        HttpResponse.BodyHandlers.ofString()).body());
    assertEquals("tiny", models.get("data").get(0).get("id").asText());
    HttpResponse<String> h = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/health")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(200, h.statusCode());
    assertEquals("ok", JSON.readTree(h.body()).get("status").asText());
  }

  @Test
  void stopStringsCutTheTextAndFinishTheCompletion() throws Exception {
    JsonNode free = ok("/v1/completions", "{\"prompt\":[5,6,7],\"max_tokens\":24,\"temperature\":0,"
        + "\"ignore_eos\":true}");
    String text = free.get("choices").get(0).get("text").asText();
    assertTrue(text.length() > 6, text);
    String stop = text.substring(3, 5);
    int at = text.indexOf(stop);
    JsonNode cut = ok("/v1/completions", "{\"prompt\":[5,6,7],\"max_tokens\":24,\"temperature\":0,"
        + "\"ignore_eos\":true,\"stop\":[" + JSON.writeValueAsString(stop) + "]}");
    JsonNode c = cut.get("choices").get(0);
    assertEquals("stop", c.get("finish_reason").asText());
    assertEquals(text.substring(0, at), c.get("text").asText());
    assertTrue(c.get("token_ids").size() < free.get("choices").get(0).get("token_ids").size());
  }

  @Test
  void badRequestsGetOpenAiErrorsNamingTheField() throws Exception {
    String[][] cases = {
        {"{}", "prompt"},
        {"{\"prompt\":[1,2],\"n\":0}", "n"},
        {"{\"prompt\":[1,2],\"temperature\":-1}", "temperature"},
        {"{\"prompt\":[1,2],\"top_p\":0}", "top_p"},
        {"{\"prompt\":[1,999999]}", "prompt"},
        {"{\"prompt\":[1,2],\"max_tokens\":100000}", "max_tokens"},
        {"{\"prompt\":[1,2],\"logprobs\":21}", "logprobs"},
        {"{\"prompt\":[1,2],\"logprobs\":true}", "logprobs"},
        {"{\"prompt\":[1,2],\"stream\":\"yes\"}", "stream"},
        {"{\"prompt\":[1,2],\"echo\":1}", "echo"},
        {"{\"prompt\":[1,2],\"max_tokens\":0}", "max_tokens"}, // 0 only with echo
        {"{\"prompt\":[1,2],\"stream_options\":{\"include_usage\":true}}", "stream_options"},
        {"{\"prompt\":[1,2],\"seed\":\"x\"}", "seed"},
        {"{\"prompt\":[1,2],\"stop\":5}", "stop"},
        {"{\"prompt\":[1,2],\"n\":65}", "n"}, // more than --max-batch 64
        {"[1,2]", null},
        {"{not json", null},
    };
    for (String[] c : cases) {
      HttpResponse<String> r = post("/v1/completions", c[0]);
      assertEquals(400, r.statusCode(), c[0] + " -> " + r.body());
      JsonNode e = JSON.readTree(r.body()).get("error");
      assertEquals("invalid_request_error", e.get("type").asText(), r.body());
      assertFalse(e.get("message").asText().isBlank());
      if (c[1] != null) {
        assertEquals(c[1], e.get("param").asText(), r.body());
      }
    }
    HttpResponse<String> wrongModel = post("/v1/completions", "{\"model\":\"other\",\"prompt\":[1]}");
    assertEquals(404, wrongModel.statusCode());
    assertTrue(wrongModel.body().contains("tiny"), wrongModel.body());
    assertEquals(400, post("/v1/chat/completions", "{\"messages\":[]}").statusCode());
    assertEquals(404, post("/v2/nothing", "{}").statusCode());
  }

  @Test
  void concurrentRequestsAreBatchedAndSampleWhatTheyWouldAlone() throws Exception {
    int clients = 12;
    List<String> bodies = new ArrayList<>();
    for (int i = 0; i < clients; i++) {
      bodies.add("{\"prompt\":[" + (3 + i) + ",8,9],\"n\":2,\"max_tokens\":10,\"seed\":" + (100 + i) + "}");
    }
    List<String> alone = new ArrayList<>();
    for (String b : bodies) {
      alone.add(ok("/v1/completions", b).get("choices").toString().replaceAll("\"text\":\"[^\"]*\",", ""));
    }
    long batchesBefore = server.engine().stats().batches();
    ExecutorService pool = Executors.newFixedThreadPool(clients);
    List<Future<JsonNode>> fs = new ArrayList<>();
    for (String b : bodies) {
      fs.add(pool.submit(() -> ok("/v1/completions", b)));
    }
    for (int i = 0; i < clients; i++) {
      String together = fs.get(i).get().get("choices").toString().replaceAll("\"text\":\"[^\"]*\",", "");
      JsonNode a = JSON.readTree(alone.get(i));
      JsonNode t = JSON.readTree(together);
      for (int j = 0; j < 2; j++) {
        assertEquals(a.get(j).get("token_ids"), t.get(j).get("token_ids"), "client " + i);
        for (int k = 0; k < a.get(j).get("token_ids").size(); k++) {
          assertEquals(a.get(j).get("logprobs").isNull(), t.get(j).get("logprobs").isNull());
        }
      }
    }
    pool.shutdown();
    long batches = server.engine().stats().batches() - batchesBefore;
    assertTrue(batches < clients, "12 concurrent requests ran in " + batches + " batches");
    assertTrue(server.engine().stats().maxBatchRows() > 2);
  }

  @Test
  void aRequestLargerThanMaxBatchRunsInSeveralBatchesWithTheSameTokens() throws Exception {
    StringBuilder prompts = new StringBuilder();
    for (int i = 0; i < 40; i++) {
      prompts.append(i == 0 ? "" : ",").append("[").append(10 + i).append(",3,4]");
    }
    JsonNode big = ok("/v1/completions", "{\"prompt\":[" + prompts + "],\"n\":2,\"max_tokens\":6,\"seed\":50}");
    assertEquals(80, big.get("choices").size()); // 80 sequences > --max-batch 64
    // prompt 39 of the list samples with seed 50 + 39, exactly as when sent alone
    JsonNode alone = ok("/v1/completions", "{\"prompt\":[49,3,4],\"n\":2,\"max_tokens\":6,\"seed\":89}");
    assertEquals(alone.get("choices").get(1).get("token_ids"), big.get("choices").get(79).get("token_ids"));
  }

  @Test
  void reloadSwapsWeightsAndABadFolderKeepsTheOldOnes() throws Exception {
    String greedy = "{\"prompt\":[4,5,6],\"max_tokens\":8,\"temperature\":0,\"ignore_eos\":true}";
    JsonNode before = ok("/v1/completions", greedy).get("choices").get(0).get("token_ids");
    Path dir = Fixtures.model("tiny-qwen2");
    Path changed = tmp.resolve("changed");
    try (NDManager m = NDManager.newBaseManager()) {
      CausalLM other = HfCheckpoint.load(dir, m);
      try (NoGrad g = NoGrad.enter()) {
        var emb = other.parameters().get("lm_head.weight") != null ? other.parameters().get("lm_head.weight")
            : other.parameters().get("model.embed_tokens.weight");
        emb.set(java.nio.FloatBuffer.wrap(emb.mul(-3f).toFloatArray()));
      }
      HfCheckpoint.save(other, HfCheckpoint.open(dir), changed, null);
    }
    HttpResponse<String> bad = post("/update_weights_from_disk", "{\"model_path\":\"/nonexistent/folder\"}");
    assertEquals(400, bad.statusCode(), bad.body());
    assertTrue(bad.body().contains("/nonexistent/folder"), bad.body());
    HttpResponse<String> otherShape = post("/update_weights_from_disk",
        "{\"model_path\":" + JSON.writeValueAsString(Fixtures.model("tiny-llama").toString()) + "}");
    assertEquals(400, otherShape.statusCode(), otherShape.body());
    assertEquals(before, ok("/v1/completions", greedy).get("choices").get(0).get("token_ids"));
    JsonNode done = ok("/update_weights_from_disk", "{\"model_path\":" + JSON.writeValueAsString(changed.toString())
        + "}");
    assertTrue(done.get("success").asBoolean());
    JsonNode after = ok("/v1/completions", greedy).get("choices").get(0).get("token_ids");
    assertNotEquals(before, after);
    ok("/update_weights_from_disk", "{\"model_path\":" + JSON.writeValueAsString(dir.toString()) + "}");
    assertEquals(before, ok("/v1/completions", greedy).get("choices").get(0).get("token_ids"));
  }
}
