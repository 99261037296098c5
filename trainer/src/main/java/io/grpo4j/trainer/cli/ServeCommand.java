package io.grpo4j.trainer.cli;

import io.grpo4j.trainer.serve.InferenceEngine;
import io.grpo4j.trainer.serve.InferenceServer;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code grpo serve}: an OpenAI-compatible rollout server for one model. */
@Command(name = "serve", mixinStandardHelpOptions = true,
    description = "Serves a model over the OpenAI API subset RL rollouts use (/v1/completions, /v1/chat/completions,"
        + " /v1/models, /health, POST /update_weights_from_disk).")
public final class ServeCommand implements Callable<Integer> {
  @Mixin ModelOptions modelOptions;

  @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to bind (default: ${DEFAULT-VALUE}).")
  String host;

  @Option(names = "--port", defaultValue = "8000", description = "Port; 0 picks a free one (default: ${DEFAULT-VALUE}).")
  int port;

  @Option(names = "--max-batch", defaultValue = "64",
      description = "Most sequences (prompts x n) decoded at once (default: ${DEFAULT-VALUE}).")
  int maxBatch;

  @Option(names = "--batch-wait-ms", defaultValue = "2",
      description = "How long the first request of an idle server waits for others to join its batch"
          + " (default: ${DEFAULT-VALUE}).")
  int batchWaitMs;

  @Option(names = "--batching", defaultValue = "auto",
      description = {"How requests share the model: continuous (a request joins the running batch at the next token"
          + " and leaves when done, as vLLM), request (requests arriving during a batch form the next one; static"
          + " shapes and CUDA graphs) or auto: continuous, except request on a GPU without grpo4j's native library"
          + " (there continuous steps would run without CUDA graphs) (default: ${DEFAULT-VALUE})."})
  String batching;

  @Option(names = "--served-model-name", description = "The model id clients send (default: the folder's name).")
  String servedName;

  @Override
  public Integer call() throws Exception {
    if (port < 0 || port > 65535) {
      throw new UserError("--port: " + port + " is not a TCP port");
    }
    if (maxBatch < 1) {
      throw new UserError("--max-batch must be >= 1, got " + maxBatch);
    }
    String name = servedName != null ? servedName : modelOptions.model.toAbsolutePath().normalize().getFileName()
        .toString();
    InferenceEngine engine;
    try {
      engine = new InferenceEngine(new InferenceEngine.Settings(modelOptions.model, modelOptions.target.device,
          modelOptions.target.precision, modelOptions.threads, maxBatch, batchWaitMs, batching));
    } catch (IllegalArgumentException e) {
      throw new UserError(e.getMessage());
    }
    InferenceServer server;
    try {
      server = new InferenceServer(engine, name).start(host, port);
    } catch (RuntimeException e) {
      engine.close();
      throw new UserError("cannot listen on " + host + ":" + port + ": " + e.getMessage());
    }
    CountDownLatch stopped = new CountDownLatch(1);
    java.lang.Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      server.close();
      stopped.countDown();
    }));
    // one line a supervisor (or test) can wait for
    System.out.println("grpo serve: " + name + " on http://" + host + ":" + server.port() + " (max batch " + maxBatch
        + ", " + engine.batching().name().toLowerCase(java.util.Locale.ROOT) + " batching)");
    System.out.flush();
    stopped.await();
    return 0;
  }
}
