package io.grpo4j.trainer.cli;

import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import io.grpo4j.trainer.device.Gpu;
import io.grpo4j.trainer.grpo.AdamW;
import io.grpo4j.trainer.grpo.CompletionBatch;
import io.grpo4j.trainer.grpo.GrpoLoss;
import io.grpo4j.trainer.grpo.PolicyUpdate;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The training phase alone (forward + backward + clipping + AdamW over one step's completions) on fixed random
 * tokens, so that it can be compared shape for shape with a plain PyTorch loop
 * ({@code scripts/torch_reference_bench.py}).
 */
@Command(name = "update", mixinStandardHelpOptions = true,
    description = {"Times the GRPO policy update alone: --rows completions of --prompt-len + --completion-len",
        "random tokens, one forward + backward, gradient clipping and AdamW per iteration."})
public final class BenchUpdateCommand implements Callable<Integer> {
  @Mixin ModelOptions modelOptions;

  @Option(names = "--rows", defaultValue = "32", description = "Completions per step (default: ${DEFAULT-VALUE}).")
  int rows;

  @Option(names = "--prompt-len", defaultValue = "12", description = "Default: ${DEFAULT-VALUE}.")
  int promptLen;

  @Option(names = "--completion-len", defaultValue = "32", description = "Default: ${DEFAULT-VALUE}.")
  int completionLen;

  @Option(names = "--beta", defaultValue = "0", description = "KL weight; > 0 adds the reference forward (default: ${DEFAULT-VALUE}).")
  double beta;

  @Option(names = "--loss-type", defaultValue = "grpo", description = "grpo | bnpo | dr_grpo | dapo (default: ${DEFAULT-VALUE}).")
  String lossType;

  @Option(names = "--minibatch", defaultValue = "0", description = "Rows per forward/backward; 0 = all (default: ${DEFAULT-VALUE}).")
  int minibatch;

  @Option(names = "--shards", defaultValue = "0",
      description = "Row shards run at once per minibatch (training.parallel_shards); 0 = auto (default: ${DEFAULT-VALUE}).")
  int shards;

  @Option(names = "--iterations", defaultValue = "40", description = "Timed updates (default: ${DEFAULT-VALUE}).")
  int iterations;

  @Option(names = "--warmup", defaultValue = "5", description = "Untimed updates first (default: ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--profile", description = "Write a PyTorch profiler trace (chrome://tracing JSON) of the timed updates here.")
  String profile;

  @Option(names = "--json", description = "End with one JSON object of the figures.")
  boolean json;

  @Option(names = "--lora-r", defaultValue = "0",
      description = "Train LoRA adapters of this rank on a frozen base instead of every weight; 0 = off.")
  int loraR;

  @Option(names = "--lora-alpha", defaultValue = "32", description = "LoRA alpha (default: ${DEFAULT-VALUE}).")
  double loraAlpha;

  @Option(names = "--lora-targets", defaultValue = "all-linear",
      description = "LoRA target modules, comma-separated, or all-linear (default: ${DEFAULT-VALUE}).")
  String loraTargets;

  @Option(names = "--gradient-checkpointing", description = "Recompute each layer in the backward pass.")
  boolean gradientCheckpointing;

  /** The policy: every weight trainable, or with --lora-r a frozen base (in the compute dtype) and new adapters. */
  private CausalLM load(NDManager root) throws java.io.IOException {
    if (loraR <= 0) {
      return modelOptions.load(root);
    }
    HfCheckpoint ck = HfCheckpoint.open(modelOptions.model);
    io.grpo4j.trainer.model.Runtime.userThreads(modelOptions.threads);
    io.grpo4j.trainer.model.Runtime.threadsFor(ck.config());
    CausalLM m = ck.loadFrozenBase(root.newSubManager(), modelOptions.target.precision());
    java.util.Map<String, Object> lora = new java.util.LinkedHashMap<>();
    lora.put("r", loraR);
    lora.put("lora_alpha", loraAlpha);
    lora.put("target_modules", loraTargets.equals("all-linear") ? loraTargets : java.util.List.of(loraTargets.split(",")));
    io.grpo4j.trainer.model.LoraConfig c;
    try {
      c = io.grpo4j.trainer.model.LoraConfig.parse(new io.grpo4j.datasets.config.ConfigMap("", java.util.Map.of("lora",
          lora)));
    } catch (IllegalArgumentException e) {
      throw new UserError("--lora-*: " + e.getMessage());
    }
    m.attachAdapters(io.grpo4j.trainer.model.LoraAdapters.create(c, m.config(), root.newSubManager(), 1));
    return m;
  }

  @Override
  public Integer call() throws Exception {
    if (rows < 1 || promptLen < 1 || completionLen < 1 || iterations < 1) {
      throw new UserError("--rows, --prompt-len, --completion-len and --iterations must be >= 1");
    }
    try (NDManager root = modelOptions.rootManager(); CausalLM policy = load(root);
        CausalLM reference = beta == 0 ? null : policy.adapters() != null ? policy.baseView()
            : HfCheckpoint.open(modelOptions.model).loadModel(root.newSubManager(), policy.precision())) {
      policy.setTrainable(true);
      policy.setGradientCheckpointing(gradientCheckpointing);
      int vocab = policy.config().vocabSize();
      SplittableRandom rnd = new SplittableRandom(1);
      long[][] prompts = new long[rows][promptLen];
      long[][] completions = new long[rows][completionLen];
      double[] advantages = new double[rows];
      for (int i = 0; i < rows; i++) {
        for (int k = 0; k < promptLen; k++) {
          prompts[i][k] = rnd.nextInt(vocab);
        }
        for (int k = 0; k < completionLen; k++) {
          completions[i][k] = rnd.nextInt(vocab);
        }
        advantages[i] = rnd.nextDouble() * 2 - 1;
      }
      CompletionBatch batch = new CompletionBatch(prompts, completions, 0);
      AdamW adam = policy.adapters() != null
          ? new AdamW(policy.trainableParameters(), root.newSubManager(), 0.9, 0.999, 1e-8, 0.0)
          : new AdamW(policy, root.newSubManager(), 0.9, 0.999, 1e-8, 0.0);
      GrpoLoss.Settings loss = new GrpoLoss.Settings(lossType, beta, 0.2, 0.2, "token", completionLen, false);
      PolicyUpdate.Inputs inputs = new PolicyUpdate.Inputs(policy, reference, adam, batch, advantages);
      PolicyUpdate.Settings settings = PolicyUpdate.Settings.of(loss, 1.0, 1, minibatch, 1.0, 1e-6).withShards(shards);
      for (int i = 0; i < warmup; i++) {
        PolicyUpdate.run(inputs, settings);
      }
      Gpu.synchronize(policy.device());
      Gpu.resetPeak(policy.device());
      if (profile != null) {
        JniUtils.startProfile(false, true, false);
      }
      long fb = 0;
      long opt = 0;
      long ref = 0;
      long[] each = new long[iterations];
      long t0 = System.nanoTime();
      for (int i = 0; i < iterations; i++) {
        long s0 = System.nanoTime();
        PolicyUpdate.Stats s = PolicyUpdate.run(inputs, settings);
        fb += s.forwardBackwardNanos();
        opt += s.optimizerNanos();
        ref += s.oldRefNanos();
        Gpu.synchronize(policy.device());
        each[i] = System.nanoTime() - s0;
      }
      double perStep = (System.nanoTime() - t0) / 1e9 / iterations;
      if (profile != null) {
        JniUtils.stopProfile(profile);
      }
      java.util.Arrays.sort(each);
      double median = each[iterations / 2] / 1e6;
      double best = each[0] / 1e6;
      int tokens = rows * (promptLen + completionLen);
      System.out.printf(Locale.ROOT, "policy update%s%s, %d rows x (%d + %d) tokens, beta %s, %s, %s %s: %.1f ms per"
          + " step, %.0f tokens/s (median %.1f ms, fastest %.1f ms)%n",
          loraR > 0 ? " (LoRA r=" + loraR + " " + loraTargets + ", frozen base)" : "",
          gradientCheckpointing ? " (gradient checkpointing)" : "", rows, promptLen, completionLen, beta, lossType,
          policy.device(), policy.precision().configName(), perStep * 1000, tokens / perStep, median, best);
      System.out.printf(Locale.ROOT, "  forward+backward %.1f ms, optimizer %.1f ms, reference log-probs %.1f ms%n",
          fb / 1e6 / iterations, opt / 1e6 / iterations, ref / 1e6 / iterations);
      Gpu.Memory mem = Gpu.memory(policy.device());
      if (mem != null) {
        System.out.printf(Locale.ROOT, "  GPU memory: peak %.0f MB allocated, %.0f MB reserved%n",
            mem.peakAllocated() / 1048576.0, mem.reserved() / 1048576.0);
      }
      if (json) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("step_ms", perStep * 1000);
        out.put("median_step_ms", median);
        out.put("fastest_step_ms", best);
        out.put("tokens_per_s", tokens / perStep);
        out.put("forward_backward_ms", fb / 1e6 / iterations);
        out.put("optimizer_ms", opt / 1e6 / iterations);
        out.put("reference_ms", ref / 1e6 / iterations);
        out.put("rows", rows);
        out.put("prompt_len", promptLen);
        out.put("completion_len", completionLen);
        out.put("minibatch", minibatch);
        out.put("iterations", iterations);
        out.put("device", policy.device().toString());
        out.put("precision", policy.precision().configName());
        out.put("lora_r", loraR);
        out.put("gradient_checkpointing", gradientCheckpointing);
        if (mem != null) {
          out.putAll(mem.asMetrics());
        }
        System.out.println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(out));
      }
    }
    return 0;
  }
}
