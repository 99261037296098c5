package io.grpo4j.trainer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import java.nio.file.Path;
import java.util.concurrent.ExecutionException;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.ServerConnector;

/**
 * {@code grpo serve}'s HTTP side, on Javalin (Jetty): the OpenAI routes, {@code /health}, and a weight reload that
 * speaks SGLang's {@code POST /update_weights_from_disk {"model_path": DIR}}, so one trainer client drives both.
 * Handlers block on the engine (Jetty's pool holds a thread per in-flight request); the engine batches them.
 */
public final class InferenceServer implements AutoCloseable {
  private final InferenceEngine engine;
  private final OpenAiApi api;
  private final Javalin app;

  public InferenceServer(InferenceEngine engine, String modelName) {
    this.engine = engine;
    this.api = new OpenAiApi(engine, modelName);
    this.app = Javalin.create(cfg -> {
      cfg.showJavalinBanner = false;
      cfg.http.maxRequestSize = 256L << 20;
    });
    app.post("/v1/completions", ctx -> completion(ctx, false));
    app.post("/v1/chat/completions", ctx -> completion(ctx, true));
    app.get("/v1/models", ctx -> respond(ctx, api::models));
    app.get("/health", ctx -> respond(ctx, this::health));
    app.post("/update_weights_from_disk", ctx -> respond(ctx, () -> reload(OpenAiApi.parseBody(ctx.body()))));
    app.error(404, ctx -> {
      if (ctx.result() == null || ctx.result().isEmpty() || !ctx.result().startsWith("{")) {
        json(ctx, 404, error(new ApiError(404, "not_found_error", null, ctx.method() + " " + ctx.path()
            + " is not a route of grpo serve (/v1/completions, /v1/chat/completions, /v1/models, /health,"
            + " /update_weights_from_disk)")));
      }
    });
    app.error(405, ctx -> json(ctx, 405, error(new ApiError(405, "invalid_request_error", null,
        ctx.method() + " is not allowed on " + ctx.path()))));
  }

  /** Starts listening; port 0 picks a free port (see {@link #port()}). */
  public InferenceServer start(String host, int port) {
    app.start(host, port);
    for (Connector c : app.jettyServer().server().getConnectors()) {
      if (c instanceof ServerConnector sc) {
        sc.setIdleTimeout(3_600_000); // a long generation sends nothing until it is done
      }
    }
    return this;
  }

  public int port() {
    return app.port();
  }

  public InferenceEngine engine() {
    return engine;
  }

  /** Either endpoint: a JSON answer, or with stream: true server-sent events ending {@code data: [DONE]}. */
  private void completion(Context ctx, boolean chat) {
    JsonNode body;
    try {
      body = OpenAiApi.parseBody(ctx.body());
      if (!OpenAiApi.wantsStream(body)) {
        respond(ctx, () -> chat ? api.chatCompletions(body) : api.completions(body));
        return;
      }
    } catch (ApiError a) {
      json(ctx, a.status(), error(a));
      return;
    }
    var res = ctx.res();
    boolean[] started = {false};
    java.io.OutputStream[] stream = {null};
    try {
      api.stream(body, chat, data -> {
        if (!started[0]) { // headers go with the first event, so a refused request still gets a JSON error
          started[0] = true;
          res.setStatus(200);
          res.setContentType("text/event-stream; charset=utf-8");
          res.setHeader("Cache-Control", "no-cache");
          stream[0] = res.getOutputStream();
        }
        java.io.OutputStream os = stream[0];
        os.write(("data: " + data + "\n\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        os.flush();
      });
    } catch (ApiError a) {
      if (!started[0]) {
        json(ctx, a.status(), error(a));
      }
    } catch (Exception e) {
      if (!started[0]) {
        json(ctx, 500, error(new ApiError(500, "internal_server_error", null, String.valueOf(e))));
      }
    }
  }

  private ObjectNode health() {
    ObjectNode h = OpenAiApi.JSON.createObjectNode();
    h.put("status", "ok");
    h.put("model", api.modelName());
    h.put("weights", engine.weights().toString());
    h.put("weights_version", engine.weightsVersion());
    InferenceEngine.Stats s = engine.stats();
    h.put("requests", s.jobs());
    h.put("in_flight", s.inFlight());
    h.put("generated_tokens", s.tokens());
    h.put("batches", s.batches());
    h.put("batching", s.batching());
    h.put("max_batch_rows_seen", s.maxBatchRows());
    h.put("mean_batch_rows", s.meanRows()); // occupancy: sequences per decoding step
    h.put("decode_steps", s.decodeSteps());
    h.put("latency_p50_ms", s.latencyP50Ms());
    h.put("latency_p99_ms", s.latencyP99Ms());
    h.put("busy_seconds", s.busySeconds());
    return h;
  }

  private ObjectNode reload(JsonNode req) throws Exception {
    JsonNode p = req.get("model_path");
    if (p == null || !p.isTextual() || p.asText().isBlank()) {
      throw ApiError.invalid("model_path", "model_path (an HF checkpoint folder on this machine) is required");
    }
    String msg = engine.reload(Path.of(p.asText())).get();
    ObjectNode out = OpenAiApi.JSON.createObjectNode();
    out.put("success", true);
    out.put("message", msg);
    out.put("weights_version", engine.weightsVersion());
    return out;
  }

  @FunctionalInterface
  private interface Handler {
    ObjectNode handle() throws Exception;
  }

  private static void respond(Context ctx, Handler h) {
    try {
      json(ctx, 200, h.handle());
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof ApiError a) {
        json(ctx, a.status(), error(a));
      } else {
        json(ctx, 500, error(new ApiError(500, "internal_server_error", null, String.valueOf(c))));
      }
    } catch (ApiError a) {
      json(ctx, a.status(), error(a));
    } catch (Exception e) {
      json(ctx, 500, error(new ApiError(500, "internal_server_error", null, String.valueOf(e))));
    }
  }

  private static void json(Context ctx, int status, ObjectNode body) {
    ctx.status(status);
    ctx.contentType("application/json");
    ctx.result(body.toString());
  }

  static ObjectNode error(ApiError a) {
    ObjectNode out = OpenAiApi.JSON.createObjectNode();
    ObjectNode e = out.putObject("error");
    e.put("message", a.getMessage());
    e.put("type", a.type());
    if (a.param() == null) {
      e.putNull("param");
    } else {
      e.put("param", a.param());
    }
    e.put("code", a.status());
    return out;
  }

  @Override
  public void close() {
    app.stop();
    engine.close();
  }
}
