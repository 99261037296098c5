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
    bar = progress ? new ProgressBarBuilder().setTaskName(task).setInitialMax(max).setStyle(ProgressBarStyle.ASCII)
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
      if (bar != null) {
        bar.stepTo(((Number) m.get("step")).longValue());
        bar.setExtraMessage(sb.toString());
      } else {
        System.err.println("step " + m.get("step") + " " + sb);
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
