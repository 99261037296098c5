package io.grpo4j.trainer.distributed;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code grpo train --nproc N}: N ranks of the same command on this host, as torchrun starts them. Each child is
 * this JVM's java with its class path and the same arguments, given RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
 * MASTER_PORT; rank 0 prints as usual, the others' lines come prefixed with their rank. When one rank fails, the
 * others are stopped and the failure is reported; the run folder keeps its last complete checkpoint (written by
 * rank 0, atomically), from which {@code --resume} continues with any number of ranks.
 */
public final class Launcher {
  private Launcher() {}

  /**
   * Runs {@code nproc} ranks of {@code mainClass args} and waits; returns 0 when every rank succeeded, else the
   * failing rank's exit code.
   */
  public static int run(int nproc, String mainClass, List<String> args, PrintStream err) throws IOException,
      InterruptedException {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    String javaBin = ProcessHandle.current().info().command().orElse("java");
    List<String> jvm = new ArrayList<>(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
    List<Process> ranks = new ArrayList<>();
    List<Thread> pumps = new ArrayList<>();
    for (int r = 0; r < nproc; r++) {
      List<String> cmd = new ArrayList<>();
      cmd.add(javaBin);
      cmd.addAll(jvm);
      cmd.add("-cp");
      cmd.add(System.getProperty("java.class.path"));
      cmd.add(mainClass);
      cmd.addAll(args);
      ProcessBuilder pb = new ProcessBuilder(cmd);
      Map<String, String> env = pb.environment();
      env.put("RANK", String.valueOf(r));
      env.put("LOCAL_RANK", String.valueOf(r));
      env.put("WORLD_SIZE", String.valueOf(nproc));
      env.put("MASTER_ADDR", "127.0.0.1");
      env.put("MASTER_PORT", String.valueOf(port));
      if (r == 0) {
        pb.inheritIO();
      } else {
        pb.redirectErrorStream(true);
        pb.redirectInput(ProcessBuilder.Redirect.PIPE);
      }
      Process p = pb.start();
      ranks.add(p);
      if (r > 0) {
        int rank = r;
        Thread t = new Thread(() -> pump(p, "[rank " + rank + "] ", err), "rank-" + r + "-output");
        t.setDaemon(true);
        t.start();
        pumps.add(t);
      }
    }
    Thread stopAll = new Thread(() -> ranks.forEach(Process::destroy)); // Ctrl-C: each rank checkpoints and stops
    Runtime.getRuntime().addShutdownHook(stopAll);
    // when each rank ended: the first failure is the cause, the others' errors (a closed connection) its effect
    long[] ended = new long[nproc];
    for (int r = 0; r < nproc; r++) {
      int rank = r;
      ranks.get(r).onExit().thenRun(() -> ended[rank] = System.nanoTime());
    }
    try {
      int failed = -1;
      int code = 0;
      while (true) {
        boolean allDone = true;
        boolean anyFailed = false;
        for (Process p : ranks) {
          if (p.isAlive()) {
            allDone = false;
          } else if (p.exitValue() != 0) {
            anyFailed = true;
          }
        }
        if (anyFailed) {
          Thread.sleep(300); // let the exit times of ranks failing at nearly the same moment come in
          long first = Long.MAX_VALUE;
          for (int r = 0; r < nproc; r++) {
            Process p = ranks.get(r);
            if (!p.isAlive() && p.exitValue() != 0 && ended[r] != 0 && ended[r] < first) {
              first = ended[r];
              failed = r;
              code = p.exitValue();
            }
          }
          if (failed < 0) { // exit times not recorded yet: the lowest failed rank
            for (int r = 0; r < nproc && failed < 0; r++) {
              if (!ranks.get(r).isAlive() && ranks.get(r).exitValue() != 0) {
                failed = r;
                code = ranks.get(r).exitValue();
              }
            }
          }
          break;
        }
        if (allDone) {
          break;
        }
        ranks.get(0).waitFor(200, TimeUnit.MILLISECONDS);
      }
      if (failed >= 0) {
        boolean bench = !args.isEmpty() && args.get(0).equals("bench");
        err.println((bench ? "grpo bench train" : "grpo train") + " --nproc " + nproc + ": rank " + failed
            + " exited with code " + code + describe(code) + "; stopping the other ranks."
            + (bench ? "" : " The run folder keeps its last complete checkpoint: continue with grpo train --resume"
                + " RUN_DIR [--nproc N]"));
        for (Process p : ranks) {
          p.destroy();
        }
        for (Process p : ranks) {
          if (!p.waitFor(20, TimeUnit.SECONDS)) {
            p.destroyForcibly();
          }
        }
        return code == 0 ? 1 : code;
      }
      for (Thread t : pumps) {
        t.join(2000);
      }
      return 0;
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(stopAll);
      } catch (IllegalStateException e) {
        // the JVM is shutting down: the hook is running
      }
    }
  }

  private static String describe(int code) {
    return code > 128 ? " (killed by signal " + (code - 128) + ")" : "";
  }

  private static void pump(Process p, String prefix, PrintStream out) {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        synchronized (out) {
          out.println(prefix + line);
        }
      }
    } catch (IOException e) {
      // the rank's output closed
    }
  }
}
