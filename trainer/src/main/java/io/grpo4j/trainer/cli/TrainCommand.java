package io.grpo4j.trainer.cli;

import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.grpo.GrpoTrainer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code grpo train}: a GRPO run from YAML, or the continuation of one. */
@Command(name = "train", mixinStandardHelpOptions = true,
    description = {"Trains with GRPO from a YAML config (see docs/CONFIG.md).",
        "Writes the run folder: config.yaml, metrics.jsonl, samples.jsonl, eval.jsonl, checkpoints/step-N/,",
        "final/. Ctrl-C stops after the current step and writes a checkpoint."})
public final class TrainCommand implements Callable<Integer> {
  @Option(names = "--config", description = "YAML config file.")
  Path config;

  @Option(names = "--set", description = "Override a config key, e.g. --set grpo.beta=0 (repeatable).")
  List<String> overrides = new ArrayList<>();

  @Option(names = "--run-dir", description = "Run folder (default: <logging.output_dir>/<run_name>).")
  Path runDir;

  @Option(names = "--resume", description = "Continue the run in this folder from its latest checkpoint.")
  Path resume;

  @Option(names = "--steps", description = "Shortcut for --set training.steps=N.")
  Integer steps;

  @Option(names = "--nproc", defaultValue = "1", description = {"Data-parallel ranks to start on this host, one"
      + " process each (one GPU each with --device gpu), as torchrun does; they join through c10d (Gloo on CPUs,"
      + " NCCL on GPUs). Ranks started by another launcher need no --nproc: RANK, WORLD_SIZE, MASTER_ADDR and"
      + " MASTER_PORT in the environment suffice (default: ${DEFAULT-VALUE})."})
  int nproc;

  /**
   * Whether {@code --nproc N} asks this process to start N ranks (N > 1); refuses N < 1, and N > 1 inside a rank
   * that another launcher started. Shared by grpo train and grpo bench train.
   */
  static boolean launchesRanks(int nproc) {
    if (nproc < 1) {
      throw new UserError("--nproc must be >= 1, got " + nproc);
    }
    if (nproc > 1 && io.grpo4j.trainer.distributed.DistributedEnv.fromEnv().distributed()) {
      throw new UserError("--nproc " + nproc + " inside a rank of a distributed run (WORLD_SIZE is set): start the"
          + " ranks with one launcher only");
    }
    return nproc > 1;
  }

  @Override
  public Integer call() throws Exception {
    if (launchesRanks(nproc)) {
      List<String> args = new ArrayList<>(List.of("train"));
      if (config != null) {
        args.addAll(List.of("--config", config.toAbsolutePath().toString()));
      }
      if (resume != null) {
        args.addAll(List.of("--resume", resume.toAbsolutePath().toString()));
      }
      if (runDir != null) {
        args.addAll(List.of("--run-dir", runDir.toAbsolutePath().toString()));
      }
      if (steps != null) {
        args.addAll(List.of("--steps", String.valueOf(steps)));
      }
      for (String o : overrides) {
        args.addAll(List.of("--set", o));
      }
      return io.grpo4j.trainer.distributed.Launcher.run(nproc, GrpoCli.class.getName(), args, System.err);
    }
    if (steps != null) {
      overrides.add("training.steps=" + steps);
    }
    Map<String, Object> yaml = runYaml(config, resume, overrides);
    Path dir = resume;
    TrainConfig cfg = TrainConfig.parse(new ConfigMap("", yaml));
    if (dir == null) {
      dir = runDir != null ? runDir : Path.of(cfg.logging().outputDir()).resolve(cfg.runName());
    }
    // in a data-parallel run rank 0 speaks for all: the others only print their errors
    boolean leader = io.grpo4j.trainer.distributed.DistributedEnv.fromEnv().leader();
    try (GrpoTrainer trainer = resume != null ? GrpoTrainer.resume(cfg, dir) : GrpoTrainer.start(cfg, yaml, dir)) {
      if (leader) {
        System.err.println("run folder: " + dir.toAbsolutePath());
        System.err.println("data: " + trainer.dataset().describe());
        if (trainer.currentStep() > 0) {
          System.err.println("resuming after step " + trainer.currentStep());
        }
      }
      boolean stopped;
      try (RunSupport run = new RunSupport("GRPO", cfg.training().steps(), trainer.currentStep(),
          cfg.logging().progress() && leader)) {
        trainer.train(leader ? run.onStep("reward_mean", "kl", "loss") : m -> { }, run::stopRequested);
        stopped = run.stopRequested();
      }
      if (leader) {
        System.err.println(stopped ? "stopped at step " + trainer.currentStep() + "; resume with: grpo train --resume "
            + dir : "done: " + dir.resolve("final"));
      }
    }
    return 0;
  }

  /**
   * The YAML of a new run ({@code --config}) or of the run being resumed (its resolved config.yaml), with
   * {@code --set} overrides applied and paths made absolute. Shared by train and sft.
   */
  static Map<String, Object> runYaml(Path config, Path resume, List<String> overrides) throws java.io.IOException {
    if ((config == null) == (resume == null)) {
      throw new UserError("give --config FILE (a new run) or --resume RUN_DIR (continue one)");
    }
    Map<String, Object> yaml = ConfigFiles.read(resume != null ? resume.resolve("config.yaml") : config);
    for (String s : overrides) {
      ConfigFiles.set(yaml, s);
    }
    absolutizePaths(yaml);
    return yaml;
  }

  /** Paths in a config are taken from the current folder; the run folder keeps them absolute for --resume. */
  @SuppressWarnings("unchecked")
  static void absolutizePaths(Map<String, Object> yaml) {
    for (String k : List.of("model", "reference_model")) {
      if (yaml.get(k) instanceof String s) {
        yaml.put(k, Path.of(s).toAbsolutePath().normalize().toString());
      }
    }
    if (yaml.get("dataset") instanceof Map<?, ?> d) {
      Map<String, Object> ds = new LinkedHashMap<>((Map<String, Object>) d);
      for (String k : List.of("path", "eval_path")) {
        if (ds.get(k) instanceof String s) {
          ds.put(k, Path.of(s).toAbsolutePath().normalize().toString());
        }
      }
      yaml.put("dataset", ds);
    }
    if (yaml.get("plugins") instanceof List<?> l) {
      yaml.put("plugins", l.stream().map(x -> Path.of(x.toString()).toAbsolutePath().normalize().toString()).toList());
    }
  }
}
