package io.grpo4j.rewards.builtin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.ParamSpec;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardConfigException;
import io.grpo4j.rewards.RewardFunction;
import io.grpo4j.rewards.RewardFunctionProvider;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A reward computed by a long-lived process in any language, over JSON lines: grpo4j writes
 * {@code {"id", "prompt", "completion", "fields"}} per completion to its stdin and reads {@code {"id", "reward"}}
 * lines (reward a number or null) from its stdout. This is how an existing Python reward function is reused
 * unchanged. A process that crashes is restarted for the next batch; completions it never answered get NaN,
 * which the reward set turns into the fallback and an error count. A line that is not the protocol stops the
 * batch with an error quoting it.
 */
public final class ExternalProcessReward implements RewardFunction {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String EOF = "\u0000EOF";
  private final List<String> command;
  private final Path cwd;
  private final double timeoutSeconds;
  private Process process;
  private OutputStream stdin;
  private BlockingQueue<String> lines;
  // its stdout ended (or it was killed): finished, even while isAlive() still says otherwise for a moment
  private boolean finished;
  private final Deque<String> stderrTail = new ArrayDeque<>();
  private int restarts;

  public ExternalProcessReward(List<String> command, Path cwd, double timeoutSeconds) {
    this.command = List.copyOf(command);
    this.cwd = cwd;
    this.timeoutSeconds = timeoutSeconds;
  }

  @Override
  public String name() {
    return "external_process";
  }

  public int restarts() {
    return restarts;
  }

  private void ensureRunning() throws IOException {
    if (process != null && !finished && process.isAlive()) {
      return;
    }
    if (process != null) {
      kill(); // a process that closed its stdout may not have exited yet
      restarts++;
    }
    finished = false;
    ProcessBuilder pb = new ProcessBuilder(command);
    if (cwd != null) {
      pb.directory(cwd.toFile());
    }
    try {
      process = pb.start();
    } catch (IOException e) {
      throw new IOException("external_process: cannot start " + command + ": " + e.getMessage(), e);
    }
    stdin = process.getOutputStream();
    BlockingQueue<String> q = new LinkedBlockingQueue<>();
    lines = q;
    Process p = process;
    Thread out = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          q.add(line);
        }
      } catch (IOException e) {
        // process gone
      }
      q.add(EOF);
    }, "external-reward-out");
    out.setDaemon(true);
    out.start();
    Thread err = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          synchronized (stderrTail) {
            stderrTail.addLast(line);
            if (stderrTail.size() > 20) {
              stderrTail.removeFirst();
            }
          }
        }
      } catch (IOException e) {
        // process gone
      }
    }, "external-reward-err");
    err.setDaemon(true);
    err.start();
  }

  @Override
  public synchronized List<Double> score(List<Completion> completions) {
    Double[] out = new Double[completions.size()];
    boolean[] answered = new boolean[completions.size()];
    try {
      ensureRunning();
      StringBuilder sb = new StringBuilder();
      for (int i = 0; i < completions.size(); i++) {
        Completion c = completions.get(i);
        ObjectNode n = JSON.createObjectNode();
        n.put("id", i);
        n.put("prompt", c.prompt());
        n.put("completion", c.text());
        n.set("fields", JSON.valueToTree(c.fields()));
        sb.append(JSON.writeValueAsString(n)).append('\n');
      }
      try {
        stdin.write(sb.toString().getBytes(StandardCharsets.UTF_8));
        stdin.flush();
      } catch (IOException e) {
        // died before reading everything: collect what it answered, the rest gets NaN below
      }
      long deadline = System.nanoTime() + (long) (timeoutSeconds * 1e9);
      int remaining = completions.size();
      while (remaining > 0) {
        long left = deadline - System.nanoTime();
        String line = left > 0 ? lines.poll(left, TimeUnit.NANOSECONDS) : null;
        if (line == null) {
          kill();
          throw new IllegalStateException("external_process " + command + " answered " + (completions.size()
              - remaining) + " of " + completions.size() + " completions within " + timeoutSeconds + " s; restarted");
        }
        if (line.equals(EOF)) {
          finished = true;
          break; // crashed mid-batch: unanswered ones get NaN
        }
        if (line.isBlank()) {
          continue;
        }
        JsonNode j;
        try {
          j = JSON.readTree(line);
        } catch (IOException e) {
          j = null;
        }
        if (j == null || !j.has("id") || !j.has("reward") || !j.get("id").canConvertToInt()
            || j.get("id").asInt() < 0 || j.get("id").asInt() >= out.length
            || !(j.get("reward").isNumber() || j.get("reward").isNull())) {
          kill();
          throw new IllegalStateException("external_process " + command + " printed a line that is not the protocol"
              + " (expected {\"id\": <int>, \"reward\": <number|null>}): " + abbreviate(line)
              + " — print logs to stderr, not stdout");
        }
        int id = j.get("id").asInt();
        if (!answered[id]) {
          answered[id] = true;
          remaining--;
        }
        out[id] = j.get("reward").isNull() ? null : j.get("reward").asDouble();
      }
    } catch (IOException e) {
      throw new IllegalStateException(e.getMessage() + stderrSummary(), e);
    } catch (InterruptedException e) {
      kill();
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
    List<Double> result = new ArrayList<>(Arrays.asList(out));
    for (int i = 0; i < answered.length; i++) {
      if (!answered[i]) {
        result.set(i, Double.NaN); // counted as an error by the reward set; the next batch restarts the process
      }
    }
    return result;
  }

  private String stderrSummary() {
    synchronized (stderrTail) {
      return stderrTail.isEmpty() ? "" : "; its stderr ended with: " + String.join(" | ", stderrTail);
    }
  }

  private static String abbreviate(String s) {
    return s.length() > 200 ? s.substring(0, 200) + "..." : s;
  }

  private void kill() {
    finished = true;
    if (process != null) {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }
  }

  @Override
  public synchronized void close() {
    if (process != null) {
      try {
        stdin.close();
        if (!process.waitFor(2, TimeUnit.SECONDS)) {
          kill();
        }
      } catch (IOException | InterruptedException e) {
        kill();
      }
    }
  }

  public static final class Provider implements RewardFunctionProvider {
    @Override
    public String name() {
      return "external_process";
    }

    @Override
    public String description() {
      return "a long-lived process speaking JSON lines ({id, prompt, completion, fields} -> {id, reward})";
    }

    @Override
    public List<ParamSpec> params() {
      return List.of(
          ParamSpec.required("command", "list", "the program and its arguments, e.g. [python3, my_reward.py]"),
          ParamSpec.of("cwd", "string", null, "working folder of the process"),
          ParamSpec.of("timeout_s", "double", 60.0, "time for the process to answer a whole batch"));
    }

    @Override
    public RewardFunction create(Params p) {
      List<String> cmd = p.getList("command");
      if (cmd.isEmpty()) {
        throw new RewardConfigException("reward \"external_process\": param \"command\" is empty");
      }
      String cwd = p.getString("cwd");
      return new ExternalProcessReward(cmd, cwd == null ? null : Path.of(cwd), p.doubleIn("timeout_s", 0.01, 86400));
    }
  }
}
