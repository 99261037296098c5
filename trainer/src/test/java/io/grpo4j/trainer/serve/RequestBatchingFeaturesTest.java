package io.grpo4j.trainer.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** Every test of {@link OpenAiFeaturesTest} again, with request-level batching (a GPU's default without graphs). */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RequestBatchingFeaturesTest extends OpenAiFeaturesTest {
  @Override
  String batching() {
    return "request";
  }

  @Override
  @Test
  void aShortRequestJoinsTheRunningBatchAndLeavesFirst() throws Exception {
    // request-level batching: a request sent during a batch runs in the next one, with the same seeded tokens
    String body = "{\"prompt\":[21,22,23,24],\"max_tokens\":6,\"ignore_eos\":true,\"seed\":9}";
    JsonNode alone = ok("/v1/completions", body);
    CompletableFuture<HttpResponse<String>> longOne = HTTP.sendAsync(request("/v1/completions",
        "{\"prompt\":[11,12],\"n\":16,\"max_tokens\":200,\"ignore_eos\":true}"),
        HttpResponse.BodyHandlers.ofString());
    Thread.sleep(30);
    assertEquals(alone.get("choices").get(0).get("token_ids"), ok("/v1/completions", body).get("choices").get(0)
        .get("token_ids"));
    assertEquals(200, longOne.get().statusCode());
    JsonNode health = JSON.readTree(HTTP.send(HttpRequest.newBuilder(URI.create(base + "/health")).build(),
        HttpResponse.BodyHandlers.ofString()).body());
    assertEquals("request", health.get("batching").asText());
    assertTrue(health.get("mean_batch_rows").asDouble() >= 1.0, health.toString());
  }
}
