package io.grpo4j.trainer.cli;

import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.distributed.DistributedEnv;
import io.grpo4j.trainer.distributed.Launcher;
import io.grpo4j.trainer.grpo.GrpoTrainer;
import io.grpo4j.trainer.model.AtomicFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** GRPO step timing by phase, on a synthetic task, with memory growth. */
@Command(name = "train", mixinStandardHelpOptions = true,
    description = {"Runs GRPO steps (arithmetic task, format + checker rewards) and prints each phase's share of",
        "the step time and tokens/s, plus RSS growth. --config uses your run config instead."})
public final class BenchTrainCommand implements Callable<Integer> {
  @Option(names = "--model", description = "Model folder (ignored with --config).")
  Path model;

  @Option(names = "--config", description = "A train config to benchmark instead of the built-in one.")
  Path config;

  @Option(names = "--set", description = "Config overrides, as for grpo train.")
  List<String> overrides = new ArrayList<>();

  @Option(names = "--prompts", defaultValue = "4", description = "Prompts per step (default: ${DEFAULT-VALUE}).")
  int prompts;

  @Option(names = "--group", defaultValue = "8", description = "Completions per prompt (default: ${DEFAULT-VALUE}).")
  int group;

  @Option(names = "--new-tokens", defaultValue = "32", description = "Completion length (default: ${DEFAULT-VALUE}).")
  int newTokens;

  @Option(names = "--steps", defaultValue = "20", description = "Timed steps (default: ${DEFAULT-VALUE}).")
  int steps;

  @Option(names = "--warmup", defaultValue = "3", description = "Untimed steps first (default: ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--beta", defaultValue = "0.04", description = "KL weight; 0 skips the reference model.")
  double beta;

  @Option(names = "--device", description = "cpu, gpu or gpu(N) (default: the config's, else cpu).")
  String device;

  @Option(names = "--precision", description = "auto | fp32 | tf32 | bf16 (default: the config's, else auto).")
  String precision;

  @Option(names = "--keep-run", description = "Run in this folder and keep it (metrics.jsonl per step), instead of a"
      + " temporary one.")
  Path keepRun;

  @Option(names = "--json", description = "End with one JSON object of the figures.")
  boolean json;

  @Option(names = "--nproc", defaultValue = "1", description = {"Data-parallel ranks on this host, as grpo train"
      + " --nproc (one GPU each with --device gpu); --prompts is the total over the ranks. Rank 0 prints the figures,"
      + " tokens/s summed over the ranks (default: ${DEFAULT-VALUE})."})
  int nproc;

  @picocli.CommandLine.Spec
  picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() throws Exception {
    if (TrainCommand.launchesRanks(nproc)) {
      List<String> args = new ArrayList<>();
      List<String> given = spec.commandLine().getParseResult().originalArgs(); // from "bench train" on
      for (int i = 0; i < given.size(); i++) {
        String a = given.get(i);
        if (a.equals("--nproc")) {
          i++;
        } else if (!a.startsWith("--nproc=")) {
          args.add(a);
        }
      }
      return Launcher.run(nproc, GrpoCli.class.getName(), args, System.err);
    }
    DistributedEnv env = DistributedEnv.fromEnv();
    int world = env.worldSize();
    Map<String, Object> y;
    if (config != null) {
      y = ConfigFiles.read(config);
    } else {
      if (model == null) {
        throw new UserError("give --model DIR or --config FILE");
      }
      y = new LinkedHashMap<>();
      y.put("model", model.toString());
      y.put("dataset", Map.of("task", Map.of("name", "arithmetic", "n", 1000, "digits", 2)));
      y.put("rewards", List.of(Map.of("name", "format", "weight", 0.5, "params", Map.of("mode", "partial")),
          Map.of("name", "arithmetic")));
      y.put("grpo", new LinkedHashMap<>(Map.of("group_size", group, "prompts_per_step", prompts, "beta", beta)));
      y.put("sampling", new LinkedHashMap<>(Map.of("max_completion_length", newTokens)));
      // short plain prompts, as in the TRL anchor; --set prompt.template=r1_chat measures chat-length prompts
      y.put("prompt", new LinkedHashMap<>(Map.of("template", "plain")));
    }
    for (String s : overrides) {
      ConfigFiles.set(y, s);
    }
    if (device != null) {
      ConfigFiles.set(y, "device=" + device);
    }
    if (precision != null) {
      ConfigFiles.set(y, "precision=" + precision);
    }
    ConfigFiles.set(y, "training.steps=" + (warmup + steps));
    ConfigFiles.set(y, "logging.progress=false");
    ConfigFiles.set(y, "eval.every=0");
    ConfigFiles.set(y, "checkpoint.save_every=0");
    TrainCommand.absolutizePaths(y);
    TrainConfig cfg = TrainConfig.parse(new ConfigMap("", y));
    Path dir = keepRun != null ? null : Files.createTempDirectory("grpo4j-bench-");
    try (GrpoTrainer t = GrpoTrainer.start(cfg, y, keepRun != null ? keepRun : dir.resolve("run"))) {
      for (int i = 0; i < warmup; i++) {
        t.step();
      }
      double rssWarm = ProcessMemory.rssMb();
      String[] phases = {"time/sampling_s", "time/rewards_s", "time/old_ref_logps_s", "time/forward_backward_s",
          "time/optimizer_s", "time/allreduce_s"};
      double[] sums = new double[phases.length];
      double total = 0;
      double sampleTok = 0;
      double trainTok = 0;
      double stepTrainTokens = 0; // tokens trained by this rank over the timed steps
      for (int i = 0; i < steps; i++) {
        Map<String, Object> m = t.step();
        for (int k = 0; k < phases.length; k++) {
          sums[k] += ((Number) m.get(phases[k])).doubleValue();
        }
        total += ((Number) m.get("step_time_s")).doubleValue();
        sampleTok += ((Number) m.get("sampling_tokens_per_s")).doubleValue();
        double tps = ((Number) m.get("training_tokens_per_s")).doubleValue();
        trainTok += tps;
        stepTrainTokens += tps * ((Number) m.get("time/forward_backward_s")).doubleValue();
      }
      double rssEnd = ProcessMemory.rssMb();
      if (!env.leader()) {
        return 0; // rank 0 prints the run's figures
      }
      System.out.printf(Locale.ROOT, "%d GRPO steps of %d prompts x %d completions x %d tokens: %.3f s per step%n",
          steps, cfg.grpo().promptsPerStep(), cfg.grpo().groupSize(), cfg.sampling().maxCompletionLength(),
          total / steps);
      String[] names = {"sampling", "rewards", "old/ref log-probs", "forward+backward", "optimizer",
          "(all-reduce)"};
      double accounted = 0;
      for (int k = 0; k < phases.length; k++) {
        accounted += k == phases.length - 1 ? 0 : sums[k]; // the all-reduce is part of the optimizer phase
        System.out.printf(Locale.ROOT, "  %-18s %6.1f%%  %.4f s/step%n", names[k], 100 * sums[k] / total,
            sums[k] / steps);
      }
      System.out.printf(Locale.ROOT, "  %-18s %6.1f%%%n", "other", 100 * (total - accounted) / total);
      // the sampled token count in the metrics is already summed over the ranks; the trained one is this rank's, and
      // every rank trains its share at the same pace (a step ends at the all-reduce), so the run's training tokens/s
      // is one rank's times the world size. The training phase counts old/ref log-probs, forward+backward and the
      // optimizer with its all-reduce
      double phaseTokPerS = world * stepTrainTokens / (sums[2] + sums[3] + sums[4]);
      trainTok *= world;
      if (world > 1) {
        System.out.printf(Locale.ROOT, "%d ranks, %d prompts each; all-reduce %.4f s a step%n", world,
            cfg.grpo().promptsPerStep() / world, sums[5] / steps);
      }
      System.out.printf(Locale.ROOT, "sampling %.0f tokens/s, training %.0f tokens/s (forward+backward),"
          + " training phase %.0f tokens/s; RSS after warm-up %.0f MB, end %.0f MB%n", sampleTok / steps, trainTok / steps,
          phaseTokPerS, rssWarm, rssEnd);
      Map<String, Object> last = t.lastMetrics();
      if (last.containsKey("gpu_mem_peak_mb")) {
        System.out.printf(Locale.ROOT, "GPU memory: %s MB allocated after the last step, its peak %s MB, reserved %s MB%n",
            last.get("gpu_mem_allocated_mb"), last.get("gpu_mem_peak_mb"), last.get("gpu_mem_reserved_mb"));
      }
      if (json) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("step_s", total / steps);
        for (int k = 0; k < phases.length; k++) {
          out.put(phases[k].replace("time/", "").replace("_s", "") + "_share", sums[k] / total);
          out.put(phases[k].replace("time/", ""), sums[k] / steps);
        }
        out.put("sampling_tokens_per_s", sampleTok / steps);
        out.put("training_tokens_per_s", trainTok / steps);
        out.put("training_phase_tokens_per_s", phaseTokPerS);
        out.put("world_size", world);
        out.put("rss_after_warmup_mb", rssWarm);
        out.put("rss_end_mb", rssEnd);
        out.put("steps", steps);
        out.put("device", cfg.device());
        out.put("precision", t.policy().precision().configName());
        for (String k : List.of("gpu_mem_allocated_mb", "gpu_mem_peak_mb", "gpu_mem_reserved_mb")) {
          if (last.containsKey(k)) {
            out.put(k, last.get(k));
          }
        }
        System.out.println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(out));
      }
    } finally {
      if (dir != null) {
        AtomicFiles.deleteTree(dir);
      }
    }
    return 0;
  }
}
