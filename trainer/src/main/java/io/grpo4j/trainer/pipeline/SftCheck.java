package io.grpo4j.trainer.pipeline;

import io.grpo4j.datasets.Dataset;
import io.grpo4j.datasets.DatasetSpec;
import io.grpo4j.datasets.Example;
import io.grpo4j.datasets.PromptSet;
import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.datasets.tasks.Task;
import io.grpo4j.datasets.tasks.Tasks;
import io.grpo4j.trainer.grpo.EvalRunner;
import io.grpo4j.trainer.sft.SftTrainer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The cold start's stopping rule, {@code sft.stop_at_pass1}: every {@code check_every} steps (from
 * {@code check_after}) the SFT model samples answers to a check set (prompts from neither the training nor the
 * held-out set) and SFT stops once its pass@1 reaches the target. The R1 recipe wants a cold start that teaches the
 * format and leaves the rest to RL; a fixed step count lands anywhere from guessing to solved on this kind of task,
 * depending on the seed, because a small model learns to add abruptly.
 */
final class SftCheck {
  private final double target;
  private final int every;
  private final int after;
  private final PromptSet set;
  private final EvalRunner.Scoring scoring;
  private final EvalRunner.Options options;
  private final List<String> history = new ArrayList<>();

  private SftCheck(double target, int every, int after, PromptSet set, EvalRunner.Scoring scoring,
      EvalRunner.Options options) {
    this.target = target;
    this.every = every;
    this.after = after;
    this.set = set;
    this.scoring = scoring;
    this.options = options;
  }

  /** The check prompts: drawn from {@code task}, in neither the training nor the held-out set, written to file. */
  record CheckSet(Task task, List<Example> rows, Path file) {}

  /**
   * The rule from the pipeline's {@code sft:} section, or null when it sets no {@code stop_at_pass1}.
   *
   * @param sampling the held-out eval's sampling (temperature, max new tokens, seed)
   */
  static SftCheck parse(Map<String, Object> sft, CheckSet check, EvalRunner.Scoring scoring,
      EvalRunner.Options sampling) throws IOException {
    Object t = sft.get("stop_at_pass1");
    if (t == null) {
      return null;
    }
    if (!(t instanceof Number n) || n.doubleValue() <= 0 || n.doubleValue() > 1) {
      throw new ConfigException("sft.stop_at_pass1: a pass@1 in (0, 1], got " + t);
    }
    int every = ((Number) sft.getOrDefault("check_every", 25)).intValue();
    int after = ((Number) sft.getOrDefault("check_after", 100)).intValue();
    if (every < 1 || after < 0) {
      throw new ConfigException("sft.check_every must be >= 1 and sft.check_after >= 0");
    }
    Tasks.writeJsonl(check.task(), check.rows(), check.file(), false);
    PromptSet set = Dataset.open(DatasetSpec.parse(new ConfigMap("dataset", Map.of("path", check.file().toString()))))
        .train();
    // two samples per prompt: 128 answers, a pass@1 within a few points
    EvalRunner.Options o = new EvalRunner.Options(2, sampling.temperature(), 1.0, check.rows().size(),
        sampling.maxNewTokens(), "train", sampling.seed(), 1.0);
    return new SftCheck(n(t), every, after, set, scoring, o);
  }

  private static double n(Object o) {
    return ((Number) o).doubleValue();
  }

  /** Whether SFT should stop now (checked between steps). */
  boolean reached(SftTrainer st) {
    long step = st.currentStep();
    if (step < after || step % every != 0 || step == 0) {
      return false;
    }
    try {
      double pass = ((Number) EvalRunner.run(st.model(), st.tokenizer(), set, scoring, options)
          .metrics().get("pass@1")).doubleValue();
      history.add(String.format(Locale.ROOT, "%d: %.3f", step, pass));
      return pass >= target;
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  String describe() {
    return "sft check (pass@1 on " + set.size() + " check prompts, stop at " + target + "): "
        + (history.isEmpty() ? "never ran" : String.join(", ", history));
  }
}
