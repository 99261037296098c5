package io.grpo4j.trainer.config;

import io.grpo4j.datasets.DatasetSpec;
import io.grpo4j.datasets.PromptFormatter;
import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.rewards.RewardSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A whole GRPO run, read once from YAML and validated: every error names its key. Defaults follow the GRPO paper
 * and TRL where they agree; each says why.
 */
public record TrainConfig(
    String runName,
    String model,
    String referenceModel, // null = the initial policy
    String device,
    String precision, // auto | fp32 | tf32 | bf16 (see Precision); auto = bf16 on a GPU, fp32 on a CPU
    long seed,
    DatasetSpec dataset,
    PromptFormatter prompt,
    Map<String, Object> promptRaw,
    List<RewardSpec> rewards,
    RewardSettings rewardSettings,
    List<String> plugins,
    Grpo grpo,
    Sampling sampling,
    Optimizer optimizer,
    Schedule schedule,
    Training training,
    Eval eval,
    Checkpoint checkpoint,
    Logging logging,
    RolloutConfig rollout,
    io.grpo4j.trainer.grpo.RunHealth.Settings health,
    io.grpo4j.trainer.model.LoraConfig lora, // null: full fine-tuning
    Distributed distributed) {

  /**
   * Data parallelism over ranks started by {@code grpo train --nproc N} or a torchrun-style launcher (RANK,
   * WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
   *
   * @param backend gloo | nccl | auto (NCCL for a GPU run when built with it, Gloo otherwise)
   * @param timeoutSeconds how long a collective waits for the other ranks (rank 0's evals and checkpoints included)
   */
  public record Distributed(String backend, int timeoutSeconds) {}

  public record RewardSettings(double fallback, boolean failFast, double timeoutSeconds, int parallelism) {}

  /**
   * @param groupSize G completions per prompt (8 in most R1 reproductions; 2 is the least that has a spread)
   * @param iterations mu: optimisation passes over each batch; old log-probs are kept when > 1
   * @param beta KL weight; 0 drops the reference model and its forward passes
   */
  public record Grpo(
      int groupSize,
      int promptsPerStep,
      int iterations,
      double beta,
      double epsilonLow,
      double epsilonHigh,
      String lossType,
      String scaleRewards,
      String importanceSamplingLevel,
      boolean filterZeroStdGroups,
      int maxResampleRounds,
      boolean maskTruncatedCompletions,
      boolean biasCorrectionKl,
      int refSyncEvery) {}

  public record Sampling(
      double temperature,
      double topP,
      int topK,
      double minP,
      double repetitionPenalty,
      int maxPromptLength,
      int maxCompletionLength) {}

  public record Optimizer(double lr, double beta1, double beta2, double weightDecay, double eps, double maxGradNorm) {}

  public record Schedule(String type, int warmupSteps, double minLrRatio) {}

  /** @param minibatchSize rows per forward/backward (memory knob); gradients accumulate over the step */
  /** @param parallelShards row shards per minibatch run at once (forward + backward); 0 = one per core on small CPU models */
  /**
   * @param gradientCheckpointing recompute each decoder layer in the backward pass instead of keeping its
   *     activations (same gradients, far less memory, about a third more compute)
   */
  public record Training(int steps, int minibatchSize, int maxConsecutiveSkips, int threads, int parallelShards,
      boolean gradientCheckpointing) {}

  /** @param temperature 0 = greedy; k samples per prompt give pass@k and mean@k */
  public record Eval(int every, int maxPrompts, double temperature, int k, int maxCompletionLength, boolean atStart) {}

  public record Checkpoint(int saveEvery, int keepLast) {}

  public record Logging(int samplesPerStep, boolean progress, String outputDir) {}

  public static TrainConfig parse(ConfigMap c) {
    String name = c.string("run_name", "grpo");
    if (!name.matches("[A-Za-z0-9._-]+")) {
      throw new ConfigException(c.key("run_name") + ": \"" + name + "\" may only contain letters, digits, . _ -");
    }
    String model = c.string("model", null);
    if (model == null) {
      throw new ConfigException(c.key("model") + ": required (a Hugging Face model folder)");
    }
    ConfigMap g = c.map("grpo");
    double epsLow = g.number("epsilon_low", 0.2, 0, 1); // PPO/GRPO's epsilon
    Grpo grpo = new Grpo(
        g.integer("group_size", 8, 1, 4096),
        g.integer("prompts_per_step", 4, 1, 1 << 20),
        g.integer("iterations", 1, 1, 100),
        g.number("beta", 0.04, 0, 100), // DeepSeekMath's GRPO value
        epsLow,
        g.number("epsilon_high", epsLow, 0, 100), // = epsilon_low unless DAPO's clip-higher is wanted
        g.oneOf("loss_type", "grpo", "grpo", "bnpo", "dr_grpo", "dapo"),
        g.oneOf("scale_rewards", "group", "group", "batch", "none"),
        g.oneOf("importance_sampling_level", "token", "token", "sequence"),
        g.bool("filter_zero_std_groups", false),
        g.integer("max_resample_rounds", 4, 0, 1000),
        g.bool("mask_truncated_completions", false),
        g.bool("bias_correction_kl", false), // TRL's use_bias_correction_kl: KL times the ratio
        g.integer("ref_sync_every", 0, 0, Integer.MAX_VALUE));
    g.finish();
    ConfigMap s = c.map("sampling");
    Sampling sampling = new Sampling(
        s.number("temperature", 1.0, 1e-4, 100), // on-policy sampling: the policy's own distribution
        s.number("top_p", 1.0, 1e-6, 1),
        s.integer("top_k", 0, 0, Integer.MAX_VALUE),
        s.number("min_p", 0.0, 0, 0.999),
        s.number("repetition_penalty", 1.0, 1e-3, 100),
        s.integer("max_prompt_length", 512, 1, 1 << 20),
        s.integer("max_completion_length", 256, 1, 1 << 20));
    s.finish();
    ConfigMap o = c.map("optimizer");
    List<String> betas = o.strings("betas", List.of("0.9", "0.999"));
    if (betas.size() != 2) {
      throw new ConfigException(o.key("betas") + ": expected two numbers [beta1, beta2]");
    }
    Optimizer opt = new Optimizer(
        o.number("lr", 1e-6, 0, 10), // TRL's GRPO default: RL fine-tuning moves weights gently
        parseBeta(o.key("betas"), betas.get(0)),
        parseBeta(o.key("betas"), betas.get(1)),
        o.number("weight_decay", 0.0, 0, 10),
        o.number("eps", 1e-8, 0, 1),
        o.number("max_grad_norm", 1.0, 0, 1e9)); // 0 = no clipping
    o.finish();
    ConfigMap sc = c.map("schedule");
    Schedule schedule = new Schedule(sc.oneOf("type", "constant", "constant", "linear", "cosine"),
        sc.integer("warmup_steps", 0, 0, Integer.MAX_VALUE), sc.number("min_lr_ratio", 0.0, 0, 1));
    sc.finish();
    ConfigMap t = c.map("training");
    Training training = new Training(t.integer("steps", 100, 1, Integer.MAX_VALUE),
        t.integer("minibatch_size", 0, 0, 1 << 20), t.integer("max_consecutive_skips", 3, 1, 1000),
        t.integer("threads", 0, 0, 1024), t.integer("parallel_shards", 0, 0, 1024),
        t.bool("gradient_checkpointing", false));
    t.finish();
    ConfigMap e = c.map("eval");
    Eval eval = new Eval(e.integer("every", 0, 0, Integer.MAX_VALUE), e.integer("max_prompts", 64, 1, 1 << 20),
        e.number("temperature", 0.0, 0, 100), e.integer("k", 1, 1, 1024),
        e.integer("max_completion_length", 0, 0, 1 << 20), e.bool("at_start", true));
    e.finish();
    ConfigMap k = c.map("checkpoint");
    Checkpoint ckpt = new Checkpoint(k.integer("save_every", 0, 0, Integer.MAX_VALUE),
        k.integer("keep_last", 3, 1, 10000));
    k.finish();
    ConfigMap l = c.map("logging");
    Logging logging = new Logging(l.integer("samples_per_step", 4, 0, 1 << 20), l.bool("progress", true),
        l.string("output_dir", "runs"));
    l.finish();
    List<RewardSpec> rewards = parseRewards(c);
    if (rewards.isEmpty()) {
      throw new ConfigException(c.key("rewards") + ": at least one reward is needed, e.g. [{name: format}]");
    }
    RewardSettings rset = parseRewardSettings(c);
    ConfigMap p = c.map("prompt");
    Map<String, Object> promptRaw = c.freeform("prompt");
    PromptFormatter formatter = PromptFormatter.parse(p);
    if (!c.has("dataset")) {
      throw new ConfigException(c.key("dataset") + ": required (dataset.path or dataset.task)");
    }
    DatasetSpec ds = DatasetSpec.parse(c.map("dataset"));
    RolloutConfig rollout = RolloutConfig.parse(c.map("rollout"));
    ConfigMap hc = c.map("health");
    var health = new io.grpo4j.trainer.grpo.RunHealth.Settings(hc.bool("enabled", true),
        hc.integer("patience", 10, 1, 1_000_000), // steps a condition holds before a warning
        hc.number("entropy_floor", 0.01, 0, 100), // nats per token: below it sampling has collapsed
        hc.number("kl_ceiling", 1.0, 0, 1e9)); // KL above it that keeps growing is reported
    hc.finish();
    TrainConfig cfg = new TrainConfig(name, model, c.string("reference_model", null), c.string("device", "cpu"),
        c.oneOf("precision", "auto", "auto", "fp32", "tf32", "bf16"), c.longValue("seed", 42), ds, formatter, promptRaw, List.copyOf(rewards), rset, c.strings("plugins", List.of()),
        grpo, sampling, opt, schedule, training, eval, ckpt, logging, rollout, health,
        io.grpo4j.trainer.model.LoraConfig.parse(c), distributed(c.map("distributed")));
    c.finish();
    if (grpo.promptsPerStep() * grpo.groupSize() > 1 << 20) {
      throw new ConfigException("grpo: prompts_per_step * group_size is unreasonably large");
    }
    return cfg;
  }

  /** The {@code rewards:} list: {@code {name, weight, params, alias, timeout_s}} per entry. */
  public static List<RewardSpec> parseRewards(ConfigMap c) {
    List<RewardSpec> rewards = new ArrayList<>();
    for (ConfigMap r : c.maps("rewards")) {
      String rn = r.string("name", null);
      if (rn == null) {
        throw new ConfigException(r.key("name") + ": every reward needs a name");
      }
      rewards.add(new RewardSpec(rn, r.string("alias", null), r.number("weight", 1.0, -1e6, 1e6), r.freeform("params"),
          r.number("timeout_s", 0, 0, 1e6)));
      r.finish();
    }
    return rewards;
  }

  /** {@code reward_settings:} */
  public static RewardSettings parseRewardSettings(ConfigMap c) {
    ConfigMap rs = c.map("reward_settings");
    RewardSettings s = new RewardSettings(rs.number("fallback", 0.0, -1e6, 1e6), rs.bool("fail_fast", false),
        rs.number("timeout_s", 120, 0, 1e6), rs.integer("parallelism", 4, 1, 1024));
    rs.finish();
    return s;
  }

  private static Distributed distributed(ConfigMap d) {
    Distributed out = new Distributed(d.oneOf("backend", "auto", "auto", "gloo", "nccl"),
        d.integer("timeout_s", 1800, 10, 7 * 24 * 3600));
    d.finish();
    return out;
  }

  private static double parseBeta(String key, String v) {
    try {
      double b = Double.parseDouble(v);
      if (!(b >= 0 && b < 1)) {
        throw new ConfigException(key + ": " + v + " is outside [0, 1)");
      }
      return b;
    } catch (NumberFormatException ex) {
      throw new ConfigException(key + ": \"" + v + "\" is not a number");
    }
  }
}
