package io.grpo4j.trainer.rollout;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The inference servers a run samples from. Requests go round-robin over healthy servers; a server that fails (no
 * connection, timeout, 5xx, unreadable answer) leaves the rotation and is probed with GET /health after a back-off
 * (doubling, at most 30 s). Weights are versioned: a server whose loaded version is behind (it missed a sync, or
 * came back after a restart with its initial weights) is told to reload before it gets another request.
 */
final class ServerPool {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long MAX_BACKOFF_NANOS = 30_000_000_000L;

  /** One server's state; guarded by the pool's lock except for its URL. */
  static final class Server {
    final String base;
    boolean healthy = true;
    int failures;
    long retryAtNanos;
    long weightsVersion; // the version it has loaded (0 = whatever it started with)
    String lastError;

    Server(String base) {
      this.base = base.endsWith("/") ? base.substring(0, base.length() - 1) : base;
    }

    @Override
    public String toString() {
      return base;
    }
  }

  private final List<Server> servers = new ArrayList<>();
  private final HttpClient http;
  private final String kind; // grpo | sglang | vllm
  private final long backoffNanos;
  private final Duration reloadTimeout;
  private int next;
  private long version; // weights version the servers should have
  private Path weights; // where that version lives

  ServerPool(List<String> urls, String kind, HttpClient http, double backoffSeconds, double reloadTimeoutSeconds) {
    urls.forEach(u -> servers.add(new Server(u)));
    this.kind = kind;
    this.http = http;
    this.backoffNanos = (long) (backoffSeconds * 1e9);
    this.reloadTimeout = Duration.ofMillis((long) (reloadTimeoutSeconds * 1000));
  }

  /**
   * A server to send the next request to, other than those in {@code avoid} when possible, with the current
   * weights loaded; null when none is usable right now.
   */
  Server acquire(Set<Server> avoid) {
    List<Server> candidates = new ArrayList<>();
    synchronized (this) {
      long now = System.nanoTime();
      for (int i = 0; i < servers.size(); i++) {
        Server s = servers.get((next + i) % servers.size());
        if (s.healthy || now >= s.retryAtNanos) {
          candidates.add(s);
        }
      }
      next = (next + 1) % servers.size();
      candidates.sort((a, b) -> Boolean.compare(avoid.contains(a), avoid.contains(b))); // stable: avoided last
    }
    for (Server s : candidates) {
      boolean wasHealthy;
      synchronized (this) {
        wasHealthy = s.healthy;
      }
      if (!wasHealthy && !probe(s)) {
        continue;
      }
      if (ensureWeights(s)) {
        return s;
      }
    }
    return null;
  }

  /** Takes a server out of the rotation after a failed request. */
  synchronized void fail(Server s, String why) {
    s.healthy = false;
    s.failures++;
    s.lastError = why;
    s.weightsVersion = 0; // it may come back restarted, with its initial weights: reload before using it again
    long wait = Math.min(MAX_BACKOFF_NANOS, backoffNanos << Math.min(20, s.failures - 1));
    s.retryAtNanos = System.nanoTime() + wait;
  }

  /** The server answered: back in the rotation (a reload follows first if it missed one). */
  synchronized void ok(Server s) {
    s.healthy = true;
    s.failures = 0;
    s.lastError = null;
  }

  synchronized int healthy() {
    int n = 0;
    for (Server s : servers) {
      n += s.healthy ? 1 : 0;
    }
    return n;
  }

  List<Server> servers() {
    return servers;
  }

  /** Announces new weights in {@code dir} and asks every server to load them; returns how many did. */
  int publish(Path dir) {
    synchronized (this) {
      version++;
      weights = dir;
    }
    List<Thread> threads = new ArrayList<>();
    AtomicInteger ok = new AtomicInteger();
    for (Server s : servers) { // in parallel: each reload reads the whole folder
      Thread t = new Thread(() -> {
        boolean healthy;
        synchronized (this) {
          healthy = s.healthy;
        }
        if (healthy && ensureWeights(s)) {
          ok.incrementAndGet();
        }
      }, "grpo-weight-sync");
      t.start();
      threads.add(t);
    }
    for (Thread t : threads) {
      try {
        t.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    return ok.get();
  }

  /** GET /health; a server that answers 200 is back in the rotation (weights are checked separately). */
  private boolean probe(Server s) {
    try {
      HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(s.base + "/health"))
          .timeout(Duration.ofSeconds(5)).GET().build(), HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() == 200) {
        synchronized (this) {
          s.healthy = true;
        }
        return true;
      }
      fail(s, "GET /health answered " + r.statusCode());
    } catch (IOException e) {
      fail(s, "GET /health: " + e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return false;
  }

  /** Makes sure {@code s} serves the current weights version, reloading if it is behind. */
  private boolean ensureWeights(Server s) {
    long want;
    Path dir;
    synchronized (this) {
      want = version;
      dir = weights;
      if (s.weightsVersion >= want || dir == null) {
        return true;
      }
    }
    synchronized (s) { // one reload per server at a time; others wait for it
      synchronized (this) {
        if (s.weightsVersion >= want) {
          return true;
        }
      }
      try {
        reload(s, dir);
        synchronized (this) {
          s.weightsVersion = Math.max(s.weightsVersion, want);
        }
        return true;
      } catch (IOException e) {
        fail(s, "weight reload from " + dir + " failed: " + e.getMessage());
        System.err.println("rollout: " + s + ": weight reload failed, server left out until it recovers: "
            + e.getMessage());
        return false;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
  }

  private void reload(Server s, Path dir) throws IOException, InterruptedException {
    String abs = dir.toAbsolutePath().normalize().toString();
    switch (kind) {
      case "vllm" -> {
        // vLLM re-reads the folder it was started on (sync_dir), then must forget KV computed with old weights
        post(s, "/collective_rpc", "{\"method\": \"reload_weights\"}");
        post(s, "/reset_prefix_cache", "");
      }
      default -> { // grpo serve and SGLang share the request shape
        JsonNode r = post(s, "/update_weights_from_disk",
            JSON.createObjectNode().put("model_path", abs).toString());
        if (r != null && r.has("success") && !r.get("success").asBoolean()) {
          throw new IOException("server said: " + r.path("message").asText());
        }
      }
    }
  }

  private JsonNode post(Server s, String path, String body) throws IOException, InterruptedException {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(s.base + path)).timeout(reloadTimeout)
        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new IOException("POST " + path + " answered " + r.statusCode() + ": " + abbreviate(r.body()));
    }
    try {
      return r.body().isBlank() ? null : JSON.readTree(r.body());
    } catch (IOException e) {
      return null; // vLLM's dev endpoints may answer with plain text
    }
  }

  static String abbreviate(String s) {
    return s == null ? "" : s.length() > 300 ? s.substring(0, 300) + "..." : s;
  }
}
