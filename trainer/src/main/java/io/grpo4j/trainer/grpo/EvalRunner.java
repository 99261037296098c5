package io.grpo4j.trainer.grpo;

import ai.djl.ndarray.NDManager;
import io.grpo4j.datasets.Dataset;
import io.grpo4j.datasets.DatasetSpec;
import io.grpo4j.datasets.PromptFormatter;
import io.grpo4j.datasets.PromptSet;
import io.grpo4j.rewards.RewardRegistry;
import io.grpo4j.rewards.RewardSet;
import io.grpo4j.rewards.RewardSpec;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.Precision;
import io.grpo4j.trainer.model.Runtime;
import io.grpo4j.trainer.rollout.LocalRollout;
import io.grpo4j.trainer.rollout.PromptEncoder;
import io.grpo4j.trainer.rollout.Rollout;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** Loads a model folder and evaluates it on a dataset split with the given rewards ({@code grpo eval}, pipeline). */
public final class EvalRunner {
  private EvalRunner() {}

  public record Options(int k, double temperature, double topP, int maxPrompts, int maxNewTokens, String split,
      long seed, double threshold) {}

  /** A model folder and where it runs: {@code device} cpu | gpu | gpu(N), {@code precision} as --precision. */
  public record Model(Path dir, String device, String precision) {}

  /** How prompts are written and completions scored: the prompt template, the rewards and reward plugin jars. */
  public record Scoring(PromptFormatter prompt, List<RewardSpec> rewards, List<Path> plugins) {}

  public static Evaluator.Report run(Model model, DatasetSpec data, Scoring scoring, Options o) throws IOException {
    Dataset d = Dataset.open(data);
    PromptSet set = o.split().equals("train") ? d.train() : d.eval();
    if (set.size() == 0 && o.split().equals("eval")) {
      set = d.train(); // a dataset without a held-out part is evaluated on its rows
    }
    HfCheckpoint ck = HfCheckpoint.open(model.dir());
    Runtime.threadsFor(ck.config());
    try (NDManager root = NDManager.newBaseManager(Runtime.device(model.device()));
        CausalLM m = ck.loadModel(root.newSubManager(),
            Precision.parse("--precision", model.precision(), root.getDevice()));
        HfTokenizer tok = HfTokenizer.load(model.dir())) {
      return run(m, tok, set, scoring, o);
    }
  }

  /** Evaluates a model in memory (a training run checking itself) on a prompt set. */
  public static Evaluator.Report run(CausalLM m, HfTokenizer tok, PromptSet set, Scoring scoring, Options o)
      throws IOException {
    try (RewardSet rs = RewardSet.create(RewardRegistry.load(scoring.plugins()), scoring.rewards(), 0.0, false, 120,
        4)) {
      PromptEncoder enc = new PromptEncoder(tok, scoring.prompt());
      boolean greedy = o.temperature() == 0;
      SamplingParams p = new SamplingParams(o.maxNewTokens(), greedy, greedy ? 1.0 : o.temperature(), o.topP(), 0, 0.0,
          1.0, tok.stopTokenIds());
      return Evaluator.run(set, enc, new Rollout.Sampling(new LocalRollout(m, tok.padTokenId()), p, tok, rs),
          new Evaluator.Plan(o.maxPrompts(), o.k(), o.seed(), o.threshold(), 16));
    }
  }
}
