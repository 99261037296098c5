package io.grpo4j.trainer.grpo;

import io.grpo4j.datasets.PromptSet;
import io.grpo4j.rewards.RewardSet;
import io.grpo4j.trainer.rollout.PromptEncoder;
import io.grpo4j.trainer.rollout.Rollout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Held-out evaluation: k samples per prompt (greedy when temperature is 0), scored by the run's rewards. A
 * completion passes when the pass reward (by default the first reward that is not just about form) reaches the
 * threshold. Reports pass@1 averaged over the k samples (the R1 paper's metric), pass@k, and each reward's mean.
 */
public final class Evaluator {
  private static final List<String> FORM_REWARDS = List.of("format", "length", "language_consistency");

  private Evaluator() {}

  /** The reward that decides pass/fail: the first one not in {format, length, language_consistency}. */
  public static String passReward(List<String> names) {
    for (String n : names) {
      if (!FORM_REWARDS.contains(n)) {
        return n;
      }
    }
    return names.get(0);
  }

  public record Report(Map<String, Object> metrics, Rollout rollout) {}

  /**
   * What an evaluation covers.
   *
   * @param maxPrompts the first this many prompts of the set
   * @param k samples per prompt (pass@1 is their mean, pass@k whether any passed)
   * @param seed the first batch's sampling seed (batch b uses seed + its first prompt's index)
   * @param threshold a sample passes when the pass reward is at least this
   * @param batchPrompts prompts sampled together
   */
  public record Plan(int maxPrompts, int k, long seed, double threshold, int batchPrompts) {}

  public static Report run(PromptSet set, PromptEncoder encoder, Rollout.Sampling how, Plan plan) {
    int k = plan.k();
    RewardSet rewards = how.rewards();
    int n = Math.min(plan.maxPrompts(), set.size());
    if (n == 0) {
      throw new IllegalArgumentException("the eval set is empty (set dataset.eval_fraction or dataset.eval_path)");
    }
    String pass = passReward(rewards.names());
    int passIdx = rewards.names().indexOf(pass);
    Rollout all = null;
    for (int from = 0; from < n; from += plan.batchPrompts()) {
      List<PromptEncoder.Encoded> prompts = new ArrayList<>();
      for (int i = from; i < Math.min(n, from + plan.batchPrompts()); i++) {
        prompts.add(encoder.encode(set.get(i)));
      }
      Rollout r = Rollout.run(prompts, how, k, plan.seed() + from);
      all = all == null ? r : all.plus(r);
    }
    int total = n * k;
    double pass1 = 0;
    int passK = 0;
    double length = 0;
    for (int p = 0; p < n; p++) {
      boolean any = false;
      for (int j = 0; j < k; j++) {
        int i = p * k + j;
        Double v = all.rewards().values()[passIdx][i];
        boolean ok = v != null && v >= plan.threshold();
        pass1 += ok ? 1 : 0;
        any |= ok;
        length += all.generations().get(i).completionIds().length;
      }
      passK += any ? 1 : 0;
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("prompts", n);
    m.put("k", k);
    m.put("pass_reward", pass);
    m.put("pass@1", pass1 / total);
    m.put("pass@" + k, passK / (double) n);
    m.put("completion_length_mean", length / total);
    double totalReward = 0;
    for (double t : all.rewards().total()) {
      totalReward += t;
    }
    m.put("reward_mean", totalReward / total);
    for (int q = 0; q < rewards.names().size(); q++) {
      double s = 0;
      int c = 0;
      for (Double v : all.rewards().values()[q]) {
        if (v != null) {
          s += v;
          c++;
        }
      }
      m.put("rewards/" + rewards.names().get(q), c == 0 ? null : s / c);
    }
    return new Report(m, all);
  }
}
