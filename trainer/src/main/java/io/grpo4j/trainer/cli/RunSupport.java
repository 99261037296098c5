package io.grpo4j.trainer.cli;

import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * What every long-running command shares: a progress bar with ETA (me.tongfei:progressbar), and Ctrl-C handling
 * that lets the current step finish and a checkpoint be written before the JVM exits.
 */
final class RunSupport implements AutoCloseable {
  private final AtomicBoolean stop = new AtomicBoolean();
  private final java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
  private final Thread hook;
  private final ProgressBar bar;
  private final long max;
  private final long started = System.nanoTime();
  private long startStep = -1;
  private long lastLogged = -1;

  RunSupport(String task, long max, long start, boolean progress) {
    // The hook must not wait for the main thread to end: main ends in System.exit, which blocks while hooks run.
    // It waits until the command says its work (the last step, the checkpoint) is done.
    hook = new Thread(() -> {
      stop.set(true);
      System.err.println("\nstopping after the current step (writing a checkpoint)...");
      try {
        done.await(10, java.util.concurrent.TimeUnit.MINUTES);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
    Runtime.getRuntime().addShutdownHook(hook);
    this.max = max;
    // a redrawn bar only makes sense on a terminal; logs piped to a file get a line every 5% instead
    bar = progress && System.console() != null ? new ProgressBarBuilder().setTaskName(task).setInitialMax(max).setStyle(ProgressBarStyle.ASCII)
        .setUpdateIntervalMillis(500).continuousUpdate().build() : null;
    if (bar != null) {
      bar.stepTo(start);
    }
  }

  boolean stopRequested() {
    return stop.get();
  }

  /** Shows a step's metrics: in the bar when there is one, else as a log line. */
  Consumer<Map<String, Object>> onStep(String... keys) {
    return m -> {
      StringBuilder sb = new StringBuilder();
      for (String k : keys) {
        Object v = m.get(k);
        sb.append(sb.length() == 0 ? "" : " ").append(k.replace("_mean", "")).append(' ')
            .append(v instanceof Number n ? String.format(Locale.ROOT, "%.4f", n.doubleValue()) : "-");
      }
      long step = ((Number) m.get("step")).longValue();
      if (bar != null) {
        bar.stepTo(step);
        bar.setExtraMessage(sb.toString());
        return;
      }
      if (startStep < 0) {
        startStep = step - 1;
      }
      long every = Math.max(1, max / 20);
      if (step == max || lastLogged < 0 || step - lastLogged >= every) {
        lastLogged = step;
        double secs = (System.nanoTime() - started) / 1e9;
        double eta = secs / Math.max(1, step - startStep) * (max - step);
        System.err.printf(Locale.ROOT, "step %d/%d %s (%.0f s, ETA %.0f s)%n", step, max, sb, secs, eta);
      }
    };
  }

  @Override
  public void close() {
    if (bar != null) {
      bar.close();
    }
    done.countDown();
    if (!stop.get()) {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // the JVM is already shutting down
      }
    }
  }
}
