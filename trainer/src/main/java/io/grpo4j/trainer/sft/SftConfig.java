package io.grpo4j.trainer.sft;

import io.grpo4j.datasets.DatasetSpec;
import io.grpo4j.datasets.PromptFormatter;
import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.config.TrainConfig;
import java.util.List;

/**
 * Supervised fine-tuning (the R1 cold start) from YAML: the same model / dataset / prompt / optimizer / schedule /
 * checkpoint / logging sections as a GRPO config, plus {@code sft:}.
 *
 * @param targetFields row fields holding the assistant's answer, first present wins (a chat row's trailing
 *     assistant message is available as "reference")
 * @param epochs passes over the data (training.steps, when set, wins)
 */
public record SftConfig(
    String runName,
    String model,
    String device,
    String precision,
    long seed,
    DatasetSpec dataset,
    PromptFormatter prompt,
    List<String> targetFields,
    int batchSize,
    int maxLength,
    int epochs,
    TrainConfig.Optimizer optimizer,
    TrainConfig.Schedule schedule,
    int steps,
    TrainConfig.Checkpoint checkpoint,
    String outputDir,
    boolean progress) {

  public static SftConfig parse(ConfigMap c) {
    String model = c.string("model", null);
    if (model == null) {
      throw new ConfigException(c.key("model") + ": required (a Hugging Face model folder)");
    }
    ConfigMap s = c.map("sft");
    List<String> targets = s.strings("target_fields", List.of("solution", "completion", "response", "reference"));
    int batch = s.integer("batch_size", 16, 1, 1 << 16);
    int maxLen = s.integer("max_length", 1024, 8, 1 << 20);
    int epochs = s.integer("epochs", 1, 1, 100000);
    s.finish();
    ConfigMap o = c.map("optimizer");
    TrainConfig.Optimizer opt = new TrainConfig.Optimizer(o.number("lr", 1e-4, 0, 10), 0.9, 0.999,
        o.number("weight_decay", 0.0, 0, 10), o.number("eps", 1e-8, 0, 1), o.number("max_grad_norm", 1.0, 0, 1e9));
    o.strings("betas", List.of());
    o.finish();
    ConfigMap sc = c.map("schedule");
    TrainConfig.Schedule sched = new TrainConfig.Schedule(sc.oneOf("type", "cosine", "constant", "linear", "cosine"),
        sc.integer("warmup_steps", 0, 0, Integer.MAX_VALUE), sc.number("min_lr_ratio", 0.1, 0, 1));
    sc.finish();
    ConfigMap t = c.map("training");
    int steps = t.integer("steps", 0, 0, Integer.MAX_VALUE);
    t.finish();
    ConfigMap k = c.map("checkpoint");
    TrainConfig.Checkpoint ck = new TrainConfig.Checkpoint(k.integer("save_every", 0, 0, Integer.MAX_VALUE),
        k.integer("keep_last", 2, 1, 10000));
    k.finish();
    ConfigMap l = c.map("logging");
    String out = l.string("output_dir", "runs");
    boolean progress = l.bool("progress", true);
    l.integer("samples_per_step", 0, 0, 1 << 20);
    l.finish();
    if (!c.has("dataset")) {
      throw new ConfigException(c.key("dataset") + ": required");
    }
    SftConfig cfg = new SftConfig(c.string("run_name", "sft"), model, c.string("device", "cpu"),
        c.oneOf("precision", "auto", "auto", "fp32", "tf32", "bf16"), c.longValue("seed", 42), DatasetSpec.parse(c.map("dataset")), PromptFormatter.parse(c.map("prompt")),
        targets, batch, maxLen, epochs, opt, sched, steps, ck, out, progress);
    // sections a GRPO config has that SFT ignores, so one file can drive both stages
    for (String ignored : List.of("rewards", "reward_settings", "grpo", "sampling", "eval", "plugins",
        "reference_model")) {
      c.raw(ignored);
    }
    c.finish();
    return cfg;
  }
}
