package io.grpo4j.trainer.pipeline;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.datasets.DatasetSpec;
import io.grpo4j.datasets.Example;
import io.grpo4j.datasets.PromptFormatter;
import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.datasets.tasks.Task;
import io.grpo4j.datasets.tasks.Tasks;
import io.grpo4j.trainer.cli.GrpoCli;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.grpo.EvalRunner;
import io.grpo4j.trainer.grpo.Evaluator;
import io.grpo4j.trainer.grpo.GrpoTrainer;
import io.grpo4j.trainer.sft.SftConfig;
import io.grpo4j.trainer.sft.SftTrainer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * The R1 pipeline on a tiny model, stage by stage, each stage's config written into the run folder so it can be
 * re-run alone: synthetic task data (with worked solutions) -> init (model + BPE tokenizer trained on that data) ->
 * eval -> cold-start SFT -> eval -> GRPO -> eval -> export -> report, and a summary table + summary.json.
 */
public final class Pipeline {
  private final Map<String, Object> cfg;
  private final Path run;
  private final PrintStream out;
  private final List<Map<String, Object>> stages = new ArrayList<>();
  private Object rewards; // the rewards: section, defaulting to the task's checker + format
  private long evalSeed = 4242;

  public Pipeline(Map<String, Object> cfg, Path run, PrintStream out) {
    this.cfg = cfg;
    this.run = run;
    this.out = out;
  }

  @SuppressWarnings("unchecked")
  private Map<String, Object> section(String k) {
    Object v = cfg.get(k);
    return v instanceof Map ? new LinkedHashMap<>((Map<String, Object>) v) : new LinkedHashMap<>();
  }

  public Path summary() {
    return run.resolve("summary.json");
  }

  public void run(Consumer<String> log, BooleanSupplier stop, StepListener listener) throws Exception {
    // checked before any stage runs, so a typo costs no data, init or training
    Object sftSchedule = section("sft").getOrDefault("schedule", "cosine");
    if (!List.of("constant", "linear", "cosine").contains(sftSchedule)) {
      throw new ConfigException("sft.schedule: constant, linear or cosine (the lr after the warm-up: a decay to"
          + " 0.1 x sft.lr over sft.steps, or none), got " + sftSchedule);
    }
    Files.createDirectories(run);
    Map<String, Object> task = section("task");
    String taskName = String.valueOf(task.getOrDefault("name", "arithmetic"));
    rewards = cfg.getOrDefault("rewards", List.of(Map.of("name", taskName), Map.of("name", "format")));
    Map<String, Object> taskOpts = new LinkedHashMap<>(task);
    for (String k : List.of("name", "train_n", "eval_n", "seed")) {
      taskOpts.remove(k);
    }
    // one seed for every stage: task data (and the held-out set), init weights, SFT, GRPO, eval sampling;
    // task.seed, init.seed override it for their stage
    long seed = ((Number) cfg.getOrDefault("seed", 1)).longValue();
    long dataSeed = ((Number) task.getOrDefault("seed", seed)).longValue();
    evalSeed = 4242 + seed;
    int trainN = ((Number) task.getOrDefault("train_n", 4000)).intValue();
    int evalN = ((Number) task.getOrDefault("eval_n", 200)).intValue();
    Path data = Files.createDirectories(run.resolve("data"));

    // 1. data: training rows with worked solutions, a held-out eval set from another seed
    long t0 = System.nanoTime();
    Task t = Tasks.create(taskName, taskOpts);
    List<Example> train = t.generate(trainN, dataSeed);
    Tasks.writeJsonl(t, train, data.resolve("train.jsonl"), true);
    List<Example> evalRows = heldOut(t, train, evalN, dataSeed + 1_000_003L);
    Tasks.writeJsonl(t, evalRows, data.resolve("eval.jsonl"), false);
    stage("data", null, t0, Map.of("train_rows", trainN, "eval_rows", evalN));

    // 2. init: random model + a BPE tokenizer trained on the training text
    t0 = System.nanoTime();
    Map<String, Object> init = section("init");
    Path model = run.resolve("init-model");
    if (!Files.exists(model.resolve("model.safetensors"))) {
      List<String> args = new ArrayList<>(List.of("init", "--out", model.toString(),
          "--corpus", data.resolve("train.jsonl").toString()));
      init.putIfAbsent("seed", seed);
      init.forEach((k, v) -> {
        args.add("--" + k.replace('_', '-'));
        args.add(String.valueOf(v));
      });
      if (GrpoCli.execute(args.toArray(String[]::new)) != 0) {
        throw new IllegalStateException("grpo init failed");
      }
    }
    stage("init", evaluate(model, "init"), t0, Map.of());
    if (stop.getAsBoolean()) {
      return;
    }

    // 3. cold-start SFT on the worked solutions
    Map<String, Object> sft = section("sft");
    Map<String, Object> sftYaml = new LinkedHashMap<>();
    sftYaml.put("run_name", "sft");
    sftYaml.put("model", model.toAbsolutePath().toString());
    sftYaml.put("seed", seed);
    sftYaml.put("dataset", Map.of("path", data.resolve("train.jsonl").toAbsolutePath().toString()));
    sftYaml.put("prompt", section("prompt"));
    sftYaml.put("sft", Map.of("batch_size", sft.getOrDefault("batch_size", 32), "max_length",
        sft.getOrDefault("max_length", 512), "target_fields", List.of("solution")));
    sftYaml.put("optimizer", Map.of("lr", sft.getOrDefault("lr", 1e-3), "weight_decay", 0.0));
    sftYaml.put("schedule", Map.of("type", sft.getOrDefault("schedule", "cosine"), "warmup_steps",
        sft.getOrDefault("warmup_steps", 20), "min_lr_ratio", 0.1));
    sftYaml.put("training", Map.of("steps", sft.getOrDefault("steps", 300)));
    sftYaml.put("checkpoint", Map.of("save_every", sft.getOrDefault("save_every", 100), "keep_last", 1));
    sftYaml.put("logging", Map.of("progress", false));
    Path sftDir = run.resolve("sft");
    t0 = System.nanoTime();
    ConfigFiles.write(run.resolve("sft.yaml"), sftYaml);
    SftConfig sc = SftConfig.parse(new ConfigMap("", sftYaml));
    long[] sftSteps = {-1};
    if (!Files.isDirectory(sftDir.resolve("final"))) {
      try (SftTrainer st = Files.exists(sftDir.resolve("config.yaml")) ? SftTrainer.resume(sc, sftDir)
          : SftTrainer.start(sc, sftYaml, sftDir)) {
        listener.begin("SFT", st.totalSteps(), st.currentStep());
        List<Example> seen = new ArrayList<>(train);
        seen.addAll(evalRows); // the check set shares no prompt with training or the held-out set
        SftCheck check = SftCheck.parse(sft, new SftCheck.CheckSet(t, heldOut(t, seen, 64, dataSeed + 2_000_003L),
            data.resolve("check.jsonl")), scoring(), evalOptions());
        boolean[] reached = {false};
        st.train(m -> listener.step(m, "loss"), () -> {
          if (stop.getAsBoolean()) {
            return true;
          }
          reached[0] = check != null && check.reached(st);
          return reached[0];
        });
        if (reached[0]) {
          st.finishEarly();
        }
        sftSteps[0] = st.currentStep();
        listener.end();
        if (check != null) {
          log.accept(check.describe());
        }
      }
    }
    if (stop.getAsBoolean()) {
      return;
    }
    stage("sft", evaluate(sftDir.resolve("final"), "sft"), t0, sftSteps[0] < 0 ? Map.of() : Map.of("steps", sftSteps[0]));

    // 4. GRPO from the SFT model, rewards = the task's checker + format
    Map<String, Object> grpo = section("grpo");
    Map<String, Object> g = new LinkedHashMap<>();
    g.put("run_name", "grpo");
    g.put("model", sftDir.resolve("final").toAbsolutePath().toString());
    g.put("seed", seed);
    g.put("dataset", Map.of("path", data.resolve("train.jsonl").toAbsolutePath().toString(), "eval_path",
        data.resolve("eval.jsonl").toAbsolutePath().toString()));
    g.put("prompt", section("prompt"));
    g.put("rewards", rewards);
    Map<String, Object> gg = new LinkedHashMap<>(grpo);
    Object steps = gg.remove("steps");
    Object lr = gg.remove("lr");
    Object sampling = gg.remove("sampling");
    Object optimizer = gg.remove("optimizer"); // betas, weight_decay, max_grad_norm (lr is grpo.lr)
    Object schedule = gg.remove("schedule");
    g.put("grpo", gg);
    g.put("sampling", sampling != null ? sampling : Map.of("max_completion_length", 64));
    Map<String, Object> opt = new LinkedHashMap<>();
    if (optimizer instanceof Map<?, ?> m) {
      m.forEach((k, v) -> opt.put(String.valueOf(k), v));
    } else if (optimizer != null) {
      throw new ConfigException("grpo.optimizer: expected a map (betas, weight_decay, eps, max_grad_norm)");
    }
    opt.put("lr", lr != null ? lr : 1e-5);
    g.put("optimizer", opt);
    if (schedule != null) {
      g.put("schedule", schedule);
    }
    g.put("training", Map.of("steps", steps != null ? steps : 50));
    Map<String, Object> ev = section("eval");
    g.put("eval", Map.of("every", ev.getOrDefault("every", 10), "max_prompts", ev.getOrDefault("during_prompts", 32),
        "temperature", ev.getOrDefault("temperature", 0.6), "k", 1, "max_completion_length",
        ev.getOrDefault("max_new_tokens", 64)));
    g.put("checkpoint", Map.of("save_every", grpo.getOrDefault("save_every", 20), "keep_last", 2));
    g.put("logging", Map.of("progress", false, "samples_per_step", 4));
    Path grpoDir = run.resolve("grpo");
    t0 = System.nanoTime();
    ConfigFiles.write(run.resolve("grpo.yaml"), g);
    TrainConfig tc = TrainConfig.parse(new ConfigMap("", g));
    if (!Files.isDirectory(grpoDir.resolve("final"))) {
      try (GrpoTrainer gt = Files.exists(grpoDir.resolve("config.yaml")) ? GrpoTrainer.resume(tc, grpoDir)
          : GrpoTrainer.start(tc, g, grpoDir)) {
        listener.begin("GRPO", tc.training().steps(), gt.currentStep());
        gt.train(m -> listener.step(m, "reward_mean", "kl"), stop);
        listener.end();
      }
    }
    if (stop.getAsBoolean()) {
      return;
    }
    stage("grpo", evaluate(grpoDir.resolve("final"), "grpo"), t0, Map.of());

    // 5. export and report
    t0 = System.nanoTime();
    if (GrpoCli.execute("export", "--run", grpoDir.toString(), "--out", run.resolve("export").toString()) != 0) {
      throw new IllegalStateException("grpo export failed");
    }
    stage("export", null, t0, Map.of("path", run.resolve("export").toString()));
    t0 = System.nanoTime();
    Report.write(run, grpoDir, stages);
    stage("report", null, t0, Map.of("path", run.resolve("report.html").toString()));
    writeSummary();
  }

  /** Receives progress from the training stages. */
  public interface StepListener {
    void begin(String task, long max, long start);

    void step(Map<String, Object> metrics, String... keys);

    void end();
  }

  /** The prompt template and rewards every evaluation (held-out, SFT check) scores with. */
  private EvalRunner.Scoring scoring() {
    return new EvalRunner.Scoring(PromptFormatter.parse(new ConfigMap("prompt", section("prompt"))),
        TrainConfig.parseRewards(new ConfigMap("", Map.of("rewards", rewards))), List.of());
  }

  /** The eval: section: pass@1 over k samples at the R1 paper's temperature 0.6, top-p 0.95. */
  private EvalRunner.Options evalOptions() {
    Map<String, Object> ev = section("eval");
    return new EvalRunner.Options(((Number) ev.getOrDefault("k", 4)).intValue(),
        ((Number) ev.getOrDefault("temperature", 0.6)).doubleValue(),
        ((Number) ev.getOrDefault("top_p", 0.95)).doubleValue(),
        ((Number) ev.getOrDefault("max_prompts", 200)).intValue(),
        ((Number) ev.getOrDefault("max_new_tokens", 64)).intValue(), "train", evalSeed, 1.0);
  }

  private Evaluator.Report evaluate(Path model, String stage) throws IOException {
    DatasetSpec ds = DatasetSpec.parse(new ConfigMap("dataset",
        Map.of("path", run.resolve("data/eval.jsonl").toAbsolutePath().toString())));
    Evaluator.Report rep = EvalRunner.run(new EvalRunner.Model(model, "cpu", "fp32"), ds, scoring(), evalOptions());
    Map<String, Object> row = new LinkedHashMap<>(rep.metrics());
    row.put("stage", stage);
    List<Map<String, Object>> samples = new ArrayList<>();
    for (int i = 0; i < rep.rollout().completions().size(); i++) {
      Map<String, Object> s = new LinkedHashMap<>();
      s.put("prompt", rep.rollout().completions().get(i).prompt());
      s.put("completion", rep.rollout().completions().get(i).text());
      s.put("reward", rep.rollout().rewards().total()[i]);
      samples.add(s);
    }
    new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(run.resolve("eval-" + stage + ".json").toFile(),
        Map.of("metrics", rep.metrics(), "samples", samples));
    return rep;
  }

  private void stage(String name, Evaluator.Report rep, long t0, Map<String, Object> extra) throws IOException {
    Map<String, Object> s = new LinkedHashMap<>();
    s.put("stage", name);
    s.put("eval_accuracy", rep == null ? null : rep.metrics().get("pass@1"));
    s.put("seconds", Math.round((System.nanoTime() - t0) / 1e7) / 100.0);
    if (rep != null) {
      s.put("pass@" + rep.metrics().get("k"), rep.metrics().get("pass@" + rep.metrics().get("k")));
      s.put("reward_mean", rep.metrics().get("reward_mean"));
      s.put("completion_length_mean", rep.metrics().get("completion_length_mean"));
    }
    s.putAll(extra);
    stages.add(s);
    out.printf(Locale.ROOT, "[%s] %s%n", name, s);
    writeSummary();
  }

  private void writeSummary() throws IOException {
    new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(summary().toFile(), Map.of("stages", stages));
  }

  public List<Map<String, Object>> stages() {
    return stages;
  }

  /** Eval rows from another seed whose prompt never occurs in training: accuracy on them is generalisation. */
  static List<Example> heldOut(Task t, List<Example> train, int n, long seed) {
    java.util.Set<String> seen = new java.util.HashSet<>();
    train.forEach(e -> seen.add(e.prompt()));
    List<Example> out = new ArrayList<>();
    for (Example e : t.generate(n * 20, seed)) {
      if (out.size() < n && seen.add(e.prompt())) {
        out.add(e);
      }
    }
    if (out.size() < n) {
      throw new IllegalStateException("task " + t.name() + ": only " + out.size() + " eval prompts differ from the"
          + " training ones; lower task.train_n or make the task larger");
    }
    return out;
  }
}
