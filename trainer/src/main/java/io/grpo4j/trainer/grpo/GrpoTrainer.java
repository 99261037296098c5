package io.grpo4j.trainer.grpo;

import ai.djl.ndarray.NDManager;
import io.grpo4j.datasets.DataIterator;
import io.grpo4j.datasets.DataPosition;
import io.grpo4j.datasets.Dataset;
import io.grpo4j.rewards.RewardRegistry;
import io.grpo4j.rewards.RewardSet;
import io.grpo4j.trainer.config.TrainConfig;
import io.grpo4j.trainer.device.Gpu;
import io.grpo4j.trainer.device.OutOfMemory;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.distributed.DistributedEnv;
import io.grpo4j.trainer.distributed.ProcessGroup;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.LoraAdapters;
import io.grpo4j.trainer.model.LoraConfig;
import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.trainer.model.Precision;
import io.grpo4j.trainer.model.Runtime;
import io.grpo4j.trainer.rollout.LocalRollout;
import io.grpo4j.trainer.rollout.OpenAiRollout;
import io.grpo4j.trainer.rollout.PromptEncoder;
import io.grpo4j.trainer.rollout.Rollout;
import io.grpo4j.trainer.rollout.RolloutBackend;
import io.grpo4j.trainer.run.Checkpointer;
import io.grpo4j.trainer.run.JsonLines;
import io.grpo4j.trainer.run.TrainerState;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The GRPO loop. Each {@link #step} reads like the paper: sample G completions per prompt, score them, compute
 * group-relative advantages, update the policy (old/ref log-probs, clipped surrogate + KL, AdamW), log. Everything
 * a resumed run needs is in the run folder: config.yaml, metrics, samples, checkpoints.
 */
public final class GrpoTrainer implements AutoCloseable {
  private final TrainConfig cfg;
  private final Path runDir;
  private final NDManager root;
  private final CausalLM policy;
  private final CausalLM reference; // null when beta = 0
  private final HfCheckpoint source;
  private final HfTokenizer tokenizer;
  private final PromptEncoder encoder;
  private final Dataset dataset;
  private final DataIterator data;
  private final RewardSet rewards;
  private final RolloutBackend rollout;
  private final AdamW optimizer;
  private final LrSchedule schedule;
  private final Checkpointer checkpointer;
  private final JsonLines metrics;
  private final JsonLines samples;
  private final JsonLines evalLog;
  private final JsonLines healthLog;
  private final RunHealth health;
  private long step;
  private int consecutiveSkips;
  private long refSyncedStep;
  private boolean warnedNoLogprobs;
  private Map<String, Object> lastMetrics = Map.of();
  private final ProcessGroup group; // the ranks of a data-parallel run (single() alone)

  private GrpoTrainer(TrainConfig cfg, Path runDir, Path policyDir, Path refDir, TrainerState state) throws IOException {
    this.cfg = cfg;
    this.runDir = runDir;
    Runtime.userThreads(cfg.training().threads());
    DistributedEnv env = DistributedEnv.fromEnv();
    // one GPU per rank: device gpu means gpu(LOCAL_RANK)
    String device = env.distributed() && cfg.device().equals("gpu") ? "gpu(" + env.localRank() + ")" : cfg.device();
    this.root = NDManager.newBaseManager(Runtime.device(device));
    this.group = ProcessGroup.join(env, cfg.distributed().backend(), cfg.distributed().timeoutSeconds(), root);
    if (group.distributed()) {
      checkDistributable(cfg, group.worldSize());
    }
    this.source = HfCheckpoint.open(Path.of(cfg.model()));
    HfCheckpoint start = cfg.lora() != null ? source : HfCheckpoint.open(policyDir); // LoRA: the base + adapters
    if (cfg.training().threads() == 0) {
      Runtime.threadsFor(start.config());
    }
    Precision precision = Precision.parse("precision", cfg.precision(), root.getDevice());
    LoraConfig lora = cfg.lora();
    if (lora == null && source.adapter() != null) {
      throw new ConfigException("model: " + cfg.model() + " is a PEFT adapter folder; to train its adapters further"
          + " add lora: (with its r, alpha and target_modules), or train the merged model (grpo export --merge)");
    }
    if (lora == null) {
      this.policy = start.loadModel(root.newSubManager(), precision);
      policy.setTrainable(true);
      this.reference = cfg.grpo().beta() != 0
          ? HfCheckpoint.open(refDir).loadModel(root.newSubManager(), precision) : null;
    } else {
      // the base never changes: always cfg.model(), frozen (bf16 under bf16); adapters new, or the checkpoint's
      if (cfg.grpo().refSyncEvery() > 0) {
        throw new ConfigException("grpo.ref_sync_every: with lora the reference is the base model (the adapters"
            + " switched off), which never changes; drop ref_sync_every");
      }
      this.policy = source.loadFrozenBase(root.newSubManager(), precision);
      Path saved = policyDir.resolve(Checkpointer.ADAPTER_DIR);
      // a resumed run's adapters, else those of a PEFT folder given as the model, else new ones
      LoraAdapters adapters = state != null && LoraAdapters.isPeftFolder(saved)
          ? LoraAdapters.loadPeft(saved, policy.config(), root.newSubManager())
          : source.adapter() != null ? LoraAdapters.loadPeft(source.adapter(), policy.config(), root.newSubManager())
          : LoraAdapters.create(lora, policy.config(), root.newSubManager(), cfg.seed());
      if (!adapters.config().equals(lora)) {
        throw new ConfigException("lora: " + lora + " differs from the checkpoint's adapters " + adapters.config()
            + " (" + saved + "); resume with the settings the run started with");
      }
      policy.attachAdapters(adapters);
      this.reference = cfg.grpo().beta() == 0 ? null
          : cfg.referenceModel() != null ? HfCheckpoint.open(refDir).loadModel(root.newSubManager(), precision)
          : policy.baseView();
    }
    policy.setGradientCheckpointing(cfg.training().gradientCheckpointing());
    this.tokenizer = HfTokenizer.load(Path.of(cfg.model()));
    this.encoder = new PromptEncoder(tokenizer, cfg.prompt());
    this.dataset = Dataset.open(cfg.dataset());
    this.data = new DataIterator(dataset.train(), cfg.seed(), cfg.dataset().shuffle(), encoder::length,
        cfg.sampling().maxPromptLength(), cfg.dataset().onBadRow().equals("skip"));
    List<Path> jars = cfg.plugins().stream().map(Path::of).toList();
    this.rewards = RewardSet.create(RewardRegistry.load(jars), cfg.rewards(), cfg.rewardSettings().fallback(),
        cfg.rewardSettings().failFast(), cfg.rewardSettings().timeoutSeconds(), cfg.rewardSettings().parallelism());
    this.rollout = cfg.rollout().remote() ? new OpenAiRollout(cfg.rollout(), policy.config().vocabSize())
        : new LocalRollout(policy, tokenizer.padTokenId());
    var o = cfg.optimizer();
    this.optimizer = lora == null ? new AdamW(policy, root.newSubManager(), o.beta1(), o.beta2(), o.eps(),
        o.weightDecay())
        // adapters only; the base (and so the inference weights built from it) never changes
        : new AdamW(policy.trainableParameters(), root.newSubManager(), o.beta1(), o.beta2(), o.eps(), o.weightDecay());
    this.schedule = new LrSchedule(cfg.schedule().type(), o.lr(), cfg.schedule().warmupSteps(),
        cfg.training().steps(), cfg.schedule().minLrRatio());
    this.checkpointer = new Checkpointer(runDir, cfg.checkpoint().keepLast());
    if (state != null) {
      Checkpointer.restoreOptimizer(policyDir, optimizer);
      data.seek(state.dataPosition());
      step = state.step();
      consecutiveSkips = state.consecutiveSkips();
      refSyncedStep = state.refSyncedStep();
      for (String f : List.of("metrics.jsonl", "samples.jsonl", "eval.jsonl", "health.jsonl")) {
        if (group.leader()) {
          JsonLines.truncateAfter(runDir.resolve(f), step);
        }
      }
    }
    boolean writes = group.leader(); // rank 0 writes the run folder
    this.metrics = writes ? new JsonLines(runDir.resolve("metrics.jsonl")) : JsonLines.discard();
    this.samples = writes ? new JsonLines(runDir.resolve("samples.jsonl")) : JsonLines.discard();
    this.evalLog = writes ? new JsonLines(runDir.resolve("eval.jsonl")) : JsonLines.discard();
    this.healthLog = writes ? new JsonLines(runDir.resolve("health.jsonl")) : JsonLines.discard();
    this.health = new RunHealth(cfg.health(), w -> {
      if (!group.leader()) {
        return; // every rank sees the same numbers; rank 0 says it
      }
      System.err.println("step " + w.step() + ": warning (" + w.check() + "): " + w.message());
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("step", w.step());
      row.put("check", w.check());
      row.put("message", w.message());
      try {
        healthLog.write(row);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    if (cfg.rollout().remote()) {
      syncRolloutWeights(); // servers may hold the base model while this run resumes from step N
    }
  }

  /** A LoRA run's final adapters, as PEFT saves them (next to final/, the merged model). */
  public static final String FINAL_ADAPTER = "final-adapter";

  /** Writes the adapters as a PEFT folder, atomically. */
  private void saveAdapter(Path out) throws IOException {
    Path tmp = out.resolveSibling("." + out.getFileName() + ".tmp-" + ProcessHandle.current().pid());
    io.grpo4j.trainer.model.AtomicFiles.deleteTree(tmp);
    try {
      policy.adapters().savePeft(tmp, source.dir().toAbsolutePath().toString());
      HfCheckpoint.replaceDirectory(tmp, out);
    } catch (IOException | RuntimeException e) {
      io.grpo4j.trainer.model.AtomicFiles.deleteTree(tmp);
      throw e;
    }
  }

  /** Where inference servers load the policy from. */
  private Path rolloutWeightsDir() {
    return cfg.rollout().syncDir() != null ? Path.of(cfg.rollout().syncDir()) : runDir.resolve("rollout-weights");
  }

  /** Writes the policy as an HF folder (atomically) and has every server load it; returns the seconds it took. */
  private double syncRolloutWeights() throws IOException {
    long t0 = System.nanoTime();
    String dtype = cfg.rollout().syncDtype().equals("auto") ? null : HfCheckpoint.parseDtype(cfg.rollout().syncDtype());
    HfCheckpoint.save(policy, source, rolloutWeightsDir(), dtype);
    rollout.syncWeights(rolloutWeightsDir());
    return (System.nanoTime() - t0) / 1e9;
  }

  /** A new run in {@code runDir} (must be empty or absent). */
  public static GrpoTrainer start(TrainConfig cfg, Map<String, Object> resolvedYaml, Path runDir) throws IOException {
    if (DistributedEnv.fromEnv().leader()) { // data-parallel ranks > 0 leave the folder to rank 0
      if (Files.isDirectory(runDir) && Files.exists(runDir.resolve("config.yaml"))) {
        throw new IllegalArgumentException(runDir + " already holds a run; use --resume " + runDir
            + " to continue it, or pick another --run-dir");
      }
      Files.createDirectories(runDir);
      io.grpo4j.trainer.config.ConfigFiles.write(runDir.resolve("config.yaml"), resolvedYaml);
    }
    Path ref = Path.of(cfg.referenceModel() != null ? cfg.referenceModel() : cfg.model());
    return new GrpoTrainer(cfg, runDir, Path.of(cfg.model()), ref, null);
  }

  /** Continues a run from its latest complete checkpoint. */
  public static GrpoTrainer resume(TrainConfig cfg, Path runDir) throws IOException {
    Path ckpt = Checkpointer.latest(runDir).orElse(null);
    if (ckpt == null) {
      // nothing saved yet: start over in the same folder
      for (String f : List.of("metrics.jsonl", "samples.jsonl", "eval.jsonl", "health.jsonl")) {
        if (DistributedEnv.fromEnv().leader()) {
          Files.deleteIfExists(runDir.resolve(f));
        }
      }
      Path ref = Path.of(cfg.referenceModel() != null ? cfg.referenceModel() : cfg.model());
      return new GrpoTrainer(cfg, runDir, Path.of(cfg.model()), ref, null);
    }
    TrainerState st = Checkpointer.readState(ckpt);
    Path ref = st.refSyncedStep() > 0 ? ckpt.resolve("ref")
        : Path.of(cfg.referenceModel() != null ? cfg.referenceModel() : cfg.model());
    return new GrpoTrainer(cfg, runDir, ckpt, ref, st);
  }

  public long currentStep() {
    return step;
  }

  public Dataset dataset() {
    return dataset;
  }

  public CausalLM policy() {
    return policy;
  }

  /** The last step's metrics row (empty before the first step). */
  public Map<String, Object> lastMetrics() {
    return lastMetrics;
  }

  /** Runs until {@code training.steps}; {@code onStep} sees each step's metrics (progress display). */
  public void train(Consumer<Map<String, Object>> onStep, java.util.function.BooleanSupplier stopRequested)
      throws IOException {
    if (step == 0 && cfg.eval().every() > 0 && cfg.eval().atStart()) {
      evaluate();
    }
    // a stop asked of any rank stops them all after the same step
    java.util.function.BooleanSupplier stop = !group.distributed() ? stopRequested
        : () -> group.max(stopRequested.getAsBoolean() ? 1 : 0)[0] > 0;
    while (step < cfg.training().steps() && !stop.getAsBoolean()) {
      Map<String, Object> m = step();
      onStep.accept(m);
      boolean last = step == cfg.training().steps();
      if (cfg.eval().every() > 0 && (step % cfg.eval().every() == 0 || last)) {
        evaluate();
      }
      if (cfg.checkpoint().saveEvery() > 0 && step % cfg.checkpoint().saveEvery() == 0) {
        checkpoint();
      }
    }
    boolean saved = cfg.checkpoint().saveEvery() > 0 && step % cfg.checkpoint().saveEvery() == 0;
    if (!saved && step > 0) {
      checkpoint(); // Ctrl-C keeps what the run has; a finished run can be extended with --resume --steps
    }
    if (step >= cfg.training().steps() && group.leader()) {
      HfCheckpoint.save(policy, source, runDir.resolve("final"), null); // with LoRA: the merged model
      if (policy.adapters() != null) {
        saveAdapter(runDir.resolve(FINAL_ADAPTER));
      }
    }
    group.barrier(); // every rank returns once the run folder is complete
  }

  /** What a data-parallel run needs of the config: whole groups per rank, no per-rank resampling. */
  static void checkDistributable(TrainConfig cfg, int world) {
    if (cfg.grpo().promptsPerStep() % world != 0) {
      throw new ConfigException("grpo.prompts_per_step: " + cfg.grpo().promptsPerStep() + " prompts cannot be split"
          + " evenly over " + world + " ranks (each rank samples and scores whole groups); use a multiple of "
          + world);
    }
    if (cfg.grpo().filterZeroStdGroups()) {
      throw new ConfigException("grpo.filter_zero_std_groups: dynamic sampling would resample a different number of"
          + " groups on each rank; it is not supported with more than one rank yet");
    }
  }

  /** One GRPO step. */
  public Map<String, Object> step() throws IOException {
    long t0 = System.nanoTime();
    Gpu.resetPeak(policy.device()); // gpu_mem_peak_mb is this step's peak
    step++;
    var g = cfg.grpo();
    SamplingParams params = samplingParams(cfg.sampling().maxCompletionLength(), cfg.sampling().temperature(), false);

    // 1. sample G completions per prompt and score them (dynamic sampling drops groups without reward spread)
    Rollout batch = null;
    int rounds = 0;
    int sampledTokens = 0;
    long sampleNanos = 0;
    long rewardNanos = 0;
    int rewardErrors = 0;
    int retries = 0;
    int healthyServers = 0;
    while (true) {
      // every rank walks the same data order and keeps its share: prompts [first, last) of the step's batch
      int first = g.promptsPerStep() * group.rank() / group.worldSize();
      int last = g.promptsPerStep() * (group.rank() + 1) / group.worldSize();
      List<PromptEncoder.Encoded> prompts = new ArrayList<>();
      for (int i = 0; i < g.promptsPerStep(); i++) {
        var example = data.next();
        if (i >= first && i < last) {
          prompts.add(encoder.encode(example));
        }
      }
      long s0 = System.nanoTime();
      Rollout r;
      try {
        r = Rollout.run(prompts, new Rollout.Sampling(rollout, params, tokenizer, rewards), g.groupSize(),
            seedFor(step, rounds), first);
      } catch (RuntimeException e) {
        if (!OutOfMemory.is(e)) {
          throw e;
        }
        int longest = prompts.stream().mapToInt(x -> x.ids().length).max().orElse(0);
        throw OutOfMemory.of(e, policy.device(), "sampling at step " + step + " (" + prompts.size() + " prompts x "
            + g.groupSize() + " completions, prompts up to " + longest + " tokens + " + params.maxNewTokens()
            + " new)", "grpo.prompts_per_step (now " + g.promptsPerStep() + "), grpo.group_size (now " + g.groupSize()
            + ") or sampling.max_completion_length (now " + params.maxNewTokens() + ")");
      }
      long s1 = System.nanoTime();
      RolloutBackend.Stats rs = rollout.lastStats();
      sampleNanos += rs.nanos();
      rewardNanos += (s1 - s0) - rs.nanos();
      sampledTokens += (int) rs.tokens();
      retries += rs.retries();
      healthyServers = rs.healthyServers();
      for (int e : r.rewards().errors()) {
        rewardErrors += e;
      }
      r.rewards().errorMessages().forEach(msg -> System.err.println("step " + step + ": " + msg));
      if (g.filterZeroStdGroups()) {
        List<Integer> keep = new ArrayList<>();
        double[] std = Advantages.compute(r.rewards().total(), g.groupSize(), "none").groupStd();
        for (int q = 0; q < std.length; q++) {
          if (std[q] >= 1e-8) {
            keep.add(q);
          }
        }
        r = r.keepGroups(keep);
      }
      batch = batch == null ? r : batch.plus(r);
      rounds++;
      if (!g.filterZeroStdGroups() || batch.prompts().size() >= g.promptsPerStep() || rounds > g.maxResampleRounds()) {
        break;
      }
    }
    if (batch.prompts().size() > g.promptsPerStep()) {
      List<Integer> first = new ArrayList<>();
      for (int q = 0; q < g.promptsPerStep(); q++) {
        first.add(q);
      }
      batch = batch.keepGroups(first);
    }

    // 2. group-relative advantages
    double[] total = batch.rewards().total();
    Advantages.Result adv = total.length == 0 ? new Advantages.Result(new double[0], 0, new double[0])
        : Advantages.compute(total, g.groupSize(), g.scaleRewards());

    // 3. policy update: clipped surrogate + KL, AdamW
    double lr = schedule.at((int) step);
    PolicyUpdate.Stats u = null;
    CompletionBatch cb = null;
    if (!batch.generations().isEmpty()) {
      cb = completionBatch(batch, g.maskTruncatedCompletions());
      GrpoLoss.Settings ls = new GrpoLoss.Settings(g.lossType(), g.beta(), g.epsilonLow(), g.epsilonHigh(),
          g.importanceSamplingLevel(), cfg.sampling().maxCompletionLength(), g.biasCorrectionKl());
      try {
        u = PolicyUpdate.run(new PolicyUpdate.Inputs(policy, reference, optimizer, cb, adv.advantages()),
            new PolicyUpdate.Settings(ls, cfg.sampling().temperature(), g.iterations(), cfg.training().minibatchSize(),
                cfg.optimizer().maxGradNorm(), lr, samplerCorrection(batch, cb), cfg.training().parallelShards(),
                group));
      } catch (RuntimeException e) {
        if (!OutOfMemory.is(e)) {
          throw e;
        }
        int mb = cfg.training().minibatchSize() <= 0 ? cb.rows() : Math.min(cb.rows(), cfg.training().minibatchSize());
        int tokens = cb.promptLength() + cb.completionLength();
        throw OutOfMemory.of(e, policy.device(), "the policy update of step " + step + " (" + cb.rows()
            + " completions x " + tokens + " tokens = prompt " + cb.promptLength() + " + completion "
            + cb.completionLength() + ", minibatches of " + mb + " rows, " + policy.precision().configName()
            + "; the log-softmax over vocab " + policy.config().vocabSize() + " alone needs "
            + OutOfMemory.logitsGb(mb, cb.completionLength(), policy.config().vocabSize()) + " per minibatch)",
            "training.minibatch_size (now " + (cfg.training().minibatchSize() <= 0 ? "0 = all rows at once"
                : cfg.training().minibatchSize()) + "), sampling.max_completion_length (now "
            + cfg.sampling().maxCompletionLength() + ") or grpo.group_size (now " + g.groupSize()
            + ")" + (policy.precision().configName().equals("bf16") ? "" : ", or train in precision bf16")
            + (cfg.training().gradientCheckpointing() ? "" : ", or set training.gradient_checkpointing: true"));
      }
      consecutiveSkips = u.skipped() ? consecutiveSkips + 1 : 0;
    }
    if (g.refSyncEvery() > 0 && reference != null && step % g.refSyncEvery() == 0) {
      syncReference();
    }

    double syncSecs = 0;
    if (cfg.rollout().remote() && step % cfg.rollout().syncEvery() == 0) {
      if (group.leader()) {
        syncSecs = syncRolloutWeights(); // the ranks hold the same weights: rank 0 writes them once
      }
      group.barrier(); // no rank samples before the servers have them
    }

    // 4. log
    double stepSecs = (System.nanoTime() - t0) / 1e9;
    StepMetrics.Batch whole = StepMetrics.Batch.of(batch, adv).gather(group); // every rank's completions
    Map<String, Object> m = StepMetrics.of(new StepMetrics.Step(step, lr, stepSecs, data), whole, u, cb,
        new StepMetrics.Sampled(sampleNanos, rewardNanos, (int) group.sum(sampledTokens)[0], rounds,
            (int) group.sum(rewardErrors)[0]));
    if (cfg.rollout().remote()) {
      StepMetrics.addRollout(m, u == null ? null : u.mismatch(), retries, healthyServers, syncSecs);
    }
    Gpu.Memory mem = Gpu.memory(policy.device());
    if (mem != null) {
      m.putAll(mem.asMetrics());
    }
    m.putAll(health.observe(healthView(batch, whole, u)));
    metrics.write(m);
    lastMetrics = m;
    if (group.leader()) {
      writeSamples(batch, adv.advantages());
    }
    if (u != null && u.skipped()) {
      System.err.println("step " + step + ": non-finite loss or gradient (loss " + u.loss() + ", grad norm "
          + u.gradNorm() + "); update skipped (" + consecutiveSkips + " in a row)");
      if (consecutiveSkips >= cfg.training().maxConsecutiveSkips()) {
        throw new TrainingDivergedException("stopping: " + consecutiveSkips + " consecutive steps had a non-finite"
            + " loss or gradient (training.max_consecutive_skips = " + cfg.training().maxConsecutiveSkips() + "). Lower"
            + " optimizer.lr or check the rewards; the last checkpoint in " + runDir.resolve("checkpoints")
            + " is intact.");
      }
    }
    return m;
  }

  /** The step as the run-health checks see it. */
  private RunHealth.Step healthView(Rollout batch, StepMetrics.Batch whole, PolicyUpdate.Stats u) {
    int n = whole.lengths().length;
    int truncated = 0;
    for (boolean stopped : whole.stopped()) {
      truncated += stopped ? 0 : 1;
    }
    // texts: this rank's own completions in their place, the other ranks' as empty strings (rank 0's come first)
    List<String> texts = new ArrayList<>(java.util.Collections.nCopies(n, ""));
    int offset = batch.completions().size() * group.rank();
    for (int i = 0; i < batch.completions().size(); i++) {
      texts.set(offset + i, batch.completions().get(i).text());
    }
    return new RunHealth.Step(step, whole.names(), whole.values(), whole.total(), cfg.grpo().groupSize(), texts,
        n == 0 ? 0 : truncated / (double) n, u == null ? null : u.entropy(),
        u == null || cfg.grpo().beta() == 0 ? null : u.kl(), u != null && u.skipped(),
        cfg.sampling().maxCompletionLength());
  }

  private long seedFor(long step, int round) {
    return cfg.seed() * 1_000_003L + step * 1009L + round;
  }

  SamplingParams samplingParams(int maxTokens, double temperature, boolean greedy) {
    var s = cfg.sampling();
    return new SamplingParams(maxTokens, greedy, greedy ? 1.0 : temperature, s.topP(), s.topK(), s.minP(),
        s.repetitionPenalty(), tokenizer.stopTokenIds());
  }

  /**
   * The sampler's per-token log-probs laid out like {@code cb}'s completions, when every completion has them
   * (remote servers); null otherwise, and then the step runs without mismatch metrics or correction.
   */
  private PolicyUpdate.SamplerCorrection samplerCorrection(Rollout r, CompletionBatch cb) {
    if (!cfg.rollout().remote()) {
      return null;
    }
    int c = cb.completionLength();
    float[] out = new float[cb.rows() * c];
    float[] mask = cb.completionMaskValues();
    for (int i = 0; i < cb.rows(); i++) {
      float[] lp = r.generations().get(i).logprobs();
      for (int k = 0; k < c; k++) {
        if (mask[i * c + k] == 0) {
          continue;
        }
        if (lp == null || k >= lp.length || !Float.isFinite(lp[k])) {
          if (!warnedNoLogprobs) {
            System.err.println("rollout: the server returned no usable log-probs; mismatch metrics and"
                + " rollout.tis_correction are off for such steps");
            warnedNoLogprobs = true;
          }
          return null;
        }
        out[i * c + k] = lp[k];
      }
    }
    return new PolicyUpdate.SamplerCorrection(out, cfg.rollout().tisCorrection(), cfg.rollout().tisCap());
  }

  private CompletionBatch completionBatch(Rollout r, boolean maskTruncated) {
    int n = r.generations().size();
    long[][] prompts = new long[n][];
    long[][] completions = new long[n][];
    for (int i = 0; i < n; i++) {
      Generation gen = r.generations().get(i);
      prompts[i] = r.prompts().get(gen.promptIndex()).ids();
      // a truncated completion can be left out of the loss (its missing ending would be read as a bad one)
      completions[i] = maskTruncated && !gen.stopped() ? new long[0] : gen.completionIds();
    }
    return new CompletionBatch(prompts, completions, tokenizer.padTokenId());
  }

  private void writeSamples(Rollout r, double[] adv) throws IOException {
    int k = Math.min(cfg.logging().samplesPerStep(), r.completions().size());
    for (int i = 0; i < k; i++) {
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("step", step);
      row.put("prompt", r.completions().get(i).prompt());
      row.put("completion", r.completions().get(i).text());
      row.put("rewards", r.rewards().perCompletion(i));
      row.put("reward", r.rewards().total()[i]);
      row.put("advantage", adv[i]);
      row.put("finish_reason", r.generations().get(i).finishReason());
      row.put("tokens", r.generations().get(i).completionIds().length);
      samples.write(row);
    }
  }

  /** Copies the policy's weights into the reference model (TRL's sync_ref_model). */
  private void syncReference() {
    Map<String, float[]> values = new LinkedHashMap<>();
    policy.parameters().forEach((name, p) -> values.put(name, p.toFloatArray()));
    reference.overwriteWeights(values);
    refSyncedStep = step;
  }

  public Map<String, Object> evaluate() throws IOException {
    if (!group.leader()) {
      return Map.of(); // rank 0 evaluates; the others wait for it at the next collective
    }
    var e = cfg.eval();
    int maxTokens = e.maxCompletionLength() > 0 ? e.maxCompletionLength() : cfg.sampling().maxCompletionLength();
    SamplingParams p = samplingParams(maxTokens, e.temperature() > 0 ? e.temperature() : 1.0, e.temperature() == 0);
    Evaluator.Report rep = Evaluator.run(dataset.eval(), encoder, new Rollout.Sampling(rollout, p, tokenizer, rewards),
        new Evaluator.Plan(e.maxPrompts(), e.k(), cfg.seed() + 7_777_777L, 1.0,
            Math.max(1, cfg.grpo().promptsPerStep() * 2)));
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("step", step);
    row.putAll(rep.metrics());
    List<Map<String, Object>> shown = new ArrayList<>();
    for (int i = 0; i < Math.min(8, rep.rollout().completions().size()); i++) {
      Map<String, Object> s = new LinkedHashMap<>();
      s.put("prompt", rep.rollout().completions().get(i).prompt());
      s.put("completion", rep.rollout().completions().get(i).text());
      s.put("reward", rep.rollout().rewards().total()[i]);
      shown.add(s);
    }
    row.put("samples", shown);
    evalLog.write(row);
    return row;
  }

  public Path checkpoint() throws IOException {
    if (!group.leader()) {
      return null; // the ranks hold the same state: rank 0 writes it
    }
    List<String> bad = policy.nonFiniteParameters();
    if (!bad.isEmpty()) {
      throw new TrainingDivergedException("refusing to checkpoint step " + step + ": non-finite weights in " + bad
          + "; the last good checkpoint in " + runDir.resolve("checkpoints") + " is intact");
    }
    TrainerState st = new TrainerState(step, data.position(), optimizer.step(), consecutiveSkips, refSyncedStep);
    return checkpointer.save(st, policy, source, optimizer, refSyncedStep > 0 ? reference : null);
  }

  public DataPosition dataPosition() {
    return data.position();
  }

  @Override
  public void close() throws IOException {
    metrics.close();
    samples.close();
    evalLog.close();
    healthLog.close();
    rewards.close();
    rollout.close();
    tokenizer.close();
    group.close();
    root.close();
  }
}
