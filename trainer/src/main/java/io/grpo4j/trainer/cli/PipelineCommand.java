package io.grpo4j.trainer.cli;

import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.pipeline.Pipeline;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code grpo pipeline}: the whole R1 recipe on a tiny model (what scripts/train.sh runs). */
@Command(name = "pipeline", mixinStandardHelpOptions = true,
    description = {"Runs the whole R1 pipeline on a tiny model (the quickstart).",
        "data -> init -> eval -> SFT -> eval -> GRPO -> eval -> export -> report, from one YAML",
        "(configs/quickstart.yaml). Re-running continues where it stopped; each stage's config is written next to it."})
public final class PipelineCommand implements Callable<Integer> {
  @Option(names = "--config", defaultValue = "configs/quickstart.yaml", description = "Default: ${DEFAULT-VALUE}.")
  Path config;

  @Option(names = "--run-dir", description = "Default: runs/<run_name>.")
  Path runDir;

  @Option(names = "--set", description = "Override a config key (repeatable).")
  List<String> overrides = new ArrayList<>();

  @Override
  public Integer call() throws Exception {
    Map<String, Object> y = ConfigFiles.read(config);
    for (String s : overrides) {
      ConfigFiles.set(y, s);
    }
    Path dir = runDir != null ? runDir : Path.of("runs").resolve(String.valueOf(y.getOrDefault("run_name", "quickstart")));
    Pipeline p = new Pipeline(y, dir, System.out);
    long t0 = System.nanoTime();
    RunSupport[] current = new RunSupport[1];
    boolean[] stop = new boolean[1];
    p.run(System.err::println, () -> stop[0] || (current[0] != null && current[0].stopRequested()),
        new Pipeline.StepListener() {
          java.util.function.Consumer<Map<String, Object>> show;

          @Override
          public void begin(String task, long max, long start) {
            current[0] = new RunSupport(task, max, start, true);
          }

          @Override
          public void step(Map<String, Object> m, String... keys) {
            current[0].onStep(keys).accept(m);
          }

          @Override
          public void end() {
            stop[0] |= current[0].stopRequested();
            current[0].close();
            current[0] = null;
          }
        });
    double secs = (System.nanoTime() - t0) / 1e9;
    System.out.println();
    System.out.printf(Locale.ROOT, "%-8s %16s %10s%n", "stage", "held-out pass@1", "seconds");
    for (Map<String, Object> s : p.stages()) {
      Object acc = s.get("eval_accuracy");
      System.out.printf(Locale.ROOT, "%-8s %16s %10.1f%n", s.get("stage"),
          acc == null ? "" : String.format(Locale.ROOT, "%.3f", ((Number) acc).doubleValue()),
          ((Number) s.get("seconds")).doubleValue());
    }
    System.out.printf(Locale.ROOT, "total %.1f s%nsummary: %s%nreport:  %s%n", secs, p.summary(),
        dir.resolve("report.html"));
    return 0;
  }
}
