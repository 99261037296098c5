package io.grpo4j.rewards;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Runs every configured reward on a batch, in parallel on a bounded pool, and adds them up with their weights. A
 * reward that throws, returns the wrong number of values, returns NaN, or overruns its time budget gives the
 * batch's completions the fallback value and counts an error; the run goes on unless {@code failFast}.
 */
public final class RewardSet implements AutoCloseable {
  /** One configured reward. */
  public record Entry(String name, double weight, RewardFunction function, double timeoutSeconds) {}

  /**
   * @param names reward names in config order
   * @param values values[r][i]: reward r of completion i; null = not applicable
   * @param total weighted sum per completion (not-applicable rewards contribute nothing)
   * @param errors errors per reward in this batch (exceptions, timeouts, bad output)
   * @param errorMessages one line per error, for the log
   */
  public record Result(List<String> names, Double[][] values, double[] total, int[] errors, List<String> errorMessages) {
    public Map<String, Double> perCompletion(int i) {
      Map<String, Double> m = new LinkedHashMap<>();
      for (int r = 0; r < names.size(); r++) {
        m.put(names.get(r), values[r][i]);
      }
      return m;
    }
  }

  private final List<Entry> entries;
  private final double fallback;
  private final boolean failFast;
  private final double defaultTimeout;
  private final int parallelism;
  private ExecutorService pool;

  public RewardSet(List<Entry> entries, double fallback, boolean failFast, double defaultTimeoutSeconds,
      int parallelism) {
    if (entries.isEmpty()) {
      throw new RewardConfigException("rewards: at least one reward is needed");
    }
    List<String> seen = new ArrayList<>();
    for (Entry e : entries) {
      if (seen.contains(e.name())) {
        throw new RewardConfigException("rewards: \"" + e.name() + "\" appears twice; give one an alias");
      }
      seen.add(e.name());
    }
    this.entries = List.copyOf(entries);
    this.fallback = fallback;
    this.failFast = failFast;
    this.defaultTimeout = defaultTimeoutSeconds;
    this.parallelism = Math.max(1, parallelism);
    this.pool = newPool();
  }

  /** Builds the set from specs through a registry. */
  public static RewardSet create(RewardRegistry registry, List<RewardSpec> specs, double fallback, boolean failFast,
      double defaultTimeoutSeconds, int parallelism) {
    List<Entry> entries = new ArrayList<>();
    for (RewardSpec s : specs) {
      entries.add(new Entry(s.alias(), s.weight(), registry.create(s), s.timeoutSeconds()));
    }
    return new RewardSet(entries, fallback, failFast, defaultTimeoutSeconds, parallelism);
  }

  public List<String> names() {
    return entries.stream().map(Entry::name).toList();
  }

  private ExecutorService newPool() {
    AtomicInteger n = new AtomicInteger();
    ThreadFactory tf = r -> {
      Thread t = new Thread(r, "reward-" + n.incrementAndGet());
      t.setDaemon(true); // a hung plugin must not keep the JVM alive
      return t;
    };
    return Executors.newFixedThreadPool(parallelism, tf);
  }

  public synchronized Result score(List<Completion> batch) {
    int n = batch.size();
    int r = entries.size();
    Double[][] values = new Double[r][];
    int[] errors = new int[r];
    List<String> messages = new ArrayList<>();
    List<Future<List<Double>>> futures = new ArrayList<>();
    List<Completion> view = List.copyOf(batch);
    for (Entry e : entries) {
      futures.add(pool.submit(() -> e.function().score(view)));
    }
    long deadlineBase = System.nanoTime();
    boolean poolTainted = false;
    for (int k = 0; k < r; k++) {
      Entry e = entries.get(k);
      double budget = e.timeoutSeconds() > 0 ? e.timeoutSeconds() : defaultTimeout;
      String problem = null;
      List<Double> got = null;
      try {
        long left = budget > 0 ? (long) (budget * 1e9) - (System.nanoTime() - deadlineBase) : Long.MAX_VALUE;
        got = futures.get(k).get(Math.max(left, 1), TimeUnit.NANOSECONDS);
        if (got == null || got.size() != n) {
          problem = "returned " + (got == null ? "null" : got.size() + " values") + " for " + n + " completions";
          got = null;
        }
      } catch (TimeoutException te) {
        futures.get(k).cancel(true);
        poolTainted = true;
        problem = "exceeded its time budget of " + budget + " s";
      } catch (ExecutionException ee) {
        Throwable c = ee.getCause();
        problem = "threw " + c.getClass().getSimpleName() + ": " + c.getMessage();
        if (failFast) {
          throw new RewardException("reward \"" + e.name() + "\" " + problem, c);
        }
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        throw new RewardException("interrupted while scoring", ie);
      }
      Double[] row = new Double[n];
      if (problem != null) {
        if (failFast) {
          throw new RewardException("reward \"" + e.name() + "\" " + problem, null);
        }
        Arrays.fill(row, fallback);
        errors[k] = n;
        messages.add("reward \"" + e.name() + "\" " + problem + "; " + n + " completions get " + fallback);
      } else {
        for (int i = 0; i < n; i++) {
          Double v = got.get(i);
          if (v != null && !Double.isFinite(v)) {
            errors[k]++;
            messages.add("reward \"" + e.name() + "\" gave " + v + " for completion " + i + "; using " + fallback);
            v = fallback;
          }
          row[i] = v;
        }
      }
      values[k] = row;
    }
    if (poolTainted) {
      // a timed-out plugin may never return its thread; start a fresh pool so it cannot starve later batches
      pool.shutdownNow();
      pool = newPool();
    }
    double[] total = new double[n];
    for (int i = 0; i < n; i++) {
      double s = 0;
      for (int k = 0; k < r; k++) {
        if (values[k][i] != null) {
          s += entries.get(k).weight() * values[k][i];
        }
      }
      total[i] = s;
    }
    return new Result(names(), values, total, errors, messages);
  }

  @Override
  public void close() {
    pool.shutdownNow();
    for (Entry e : entries) {
      try {
        e.function().close();
      } catch (RuntimeException ex) {
        System.err.println("warning: reward \"" + e.name() + "\" failed to close: " + ex.getMessage());
      }
    }
  }
}
