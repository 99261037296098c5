package io.grpo4j.trainer.cli;

import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.sft.SftConfig;
import io.grpo4j.trainer.sft.SftTrainer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code grpo sft}: supervised fine-tuning, the cold start of the R1 pipeline. */
@Command(name = "sft", mixinStandardHelpOptions = true,
    description = {"Supervised fine-tuning: the R1 cold start.",
        "Loss on the answer tokens only; the same run folder, checkpoints and --resume as grpo train.",
        "Ctrl-C stops after the current step and writes a checkpoint."})
public final class SftCommand implements Callable<Integer> {
  @Option(names = "--config", description = "YAML config (model, dataset, prompt, sft, optimizer, ...).")
  Path config;

  @Option(names = "--set", description = "Override a config key (repeatable).")
  List<String> overrides = new ArrayList<>();

  @Option(names = "--run-dir", description = "Run folder (default: <logging.output_dir>/<run_name>).")
  Path runDir;

  @Option(names = "--resume", description = "Continue the run in this folder.")
  Path resume;

  @Override
  public Integer call() throws Exception {
    Map<String, Object> yaml = TrainCommand.runYaml(config, resume, overrides);
    SftConfig cfg = SftConfig.parse(new ConfigMap("", yaml));
    Path dir = resume != null ? resume : runDir != null ? runDir : Path.of(cfg.outputDir()).resolve(cfg.runName());
    try (SftTrainer t = resume != null ? SftTrainer.resume(cfg, dir) : SftTrainer.start(cfg, yaml, dir)) {
      System.err.println("run folder: " + dir.toAbsolutePath() + "; data: " + t.dataset().describe() + "; "
          + t.totalSteps() + " steps");
      try (RunSupport run = new RunSupport("SFT", t.totalSteps(), t.currentStep(), cfg.progress())) {
        t.train(run.onStep("loss"), run::stopRequested);
      }
    }
    return 0;
  }
}
