package io.grpo4j.trainer.grpo;

import io.grpo4j.datasets.DataIterator;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.rollout.Rollout;
import java.util.LinkedHashMap;
import java.util.Map;

/** One line of metrics.jsonl: what a researcher watches to see whether a GRPO run is healthy. */
final class StepMetrics {
  private StepMetrics() {}

  static Map<String, Object> of(long step, Rollout r, Advantages.Result adv, PolicyUpdate.Stats u,
      CompletionBatch cb, double lr, double stepSecs, long sampleNanos, long rewardNanos, int sampledTokens,
      int rounds, int rewardErrors, DataIterator data) {
    Map<String, Object> m = new LinkedHashMap<>();
    int n = r.generations().size();
    m.put("step", step);
    m.put("loss", u == null ? null : u.loss());
    double[] total = r.rewards().total();
    m.put("reward_mean", mean(total));
    m.put("reward_std", std(total));
    m.put("kl", u == null ? null : u.kl());
    for (int q = 0; q < r.rewards().names().size(); q++) {
      Double[] v = r.rewards().values()[q];
      double s = 0;
      double ss = 0;
      int c = 0;
      for (Double x : v) {
        if (x != null) {
          s += x;
          ss += x * x;
          c++;
        }
      }
      String name = r.rewards().names().get(q);
      m.put("rewards/" + name + "/mean", c == 0 ? null : s / c);
      m.put("rewards/" + name + "/std", c < 2 ? null : Math.sqrt(Math.max(0, ss / c - (s / c) * (s / c))));
      m.put("rewards/" + name + "/errors", r.rewards().errors()[q]);
    }
    m.put("advantage_mean", mean(adv.advantages()));
    m.put("advantage_std", std(adv.advantages()));
    m.put("advantage_min", min(adv.advantages()));
    m.put("advantage_max", max(adv.advantages()));
    m.put("clip_ratio_low", u == null ? null : u.clipLow());
    m.put("clip_ratio_high", u == null ? null : u.clipHigh());
    m.put("entropy", u == null ? null : u.entropy());
    int lmin = Integer.MAX_VALUE;
    int lmax = 0;
    double lsum = 0;
    int truncated = 0;
    for (Generation g : r.generations()) {
      int len = g.completionIds().length;
      lmin = Math.min(lmin, len);
      lmax = Math.max(lmax, len);
      lsum += len;
      truncated += g.stopped() ? 0 : 1;
    }
    m.put("completion_length_mean", n == 0 ? 0 : lsum / n);
    m.put("completion_length_min", n == 0 ? 0 : lmin);
    m.put("completion_length_max", lmax);
    m.put("truncated_fraction", n == 0 ? 0 : truncated / (double) n);
    int groups = r.groupSize() == 0 ? 0 : n / r.groupSize();
    m.put("zero_std_fraction", groups == 0 ? 1.0 : adv.zeroStdGroups() / (double) groups);
    m.put("resample_rounds", rounds);
    m.put("reward_errors", rewardErrors);
    m.put("lr", lr);
    m.put("grad_norm", u == null ? null : u.gradNorm());
    m.put("update_skipped", u != null && u.skipped());
    m.put("step_time_s", stepSecs);
    m.put("time/sampling_s", sampleNanos / 1e9);
    m.put("time/rewards_s", rewardNanos / 1e9);
    m.put("time/old_ref_logps_s", u == null ? 0 : u.oldRefNanos() / 1e9);
    m.put("time/forward_backward_s", u == null ? 0 : u.forwardBackwardNanos() / 1e9);
    m.put("time/optimizer_s", u == null ? 0 : u.optimizerNanos() / 1e9);
    m.put("sampling_tokens_per_s", sampleNanos == 0 ? 0 : sampledTokens / (sampleNanos / 1e9));
    long trainTokens = cb == null ? 0 : (long) cb.rows() * (cb.promptLength() + cb.completionLength());
    m.put("training_tokens_per_s", u == null || u.forwardBackwardNanos() == 0 ? 0
        : trainTokens / (u.forwardBackwardNanos() / 1e9));
    m.put("epoch", data.epoch());
    return m;
  }

  static double mean(double[] x) {
    double s = 0;
    for (double v : x) {
      s += v;
    }
    return x.length == 0 ? 0 : s / x.length;
  }

  static double std(double[] x) {
    if (x.length < 2) {
      return 0;
    }
    double mu = mean(x);
    double ss = 0;
    for (double v : x) {
      ss += (v - mu) * (v - mu);
    }
    return Math.sqrt(ss / (x.length - 1));
  }

  static double min(double[] x) {
    double m = Double.POSITIVE_INFINITY;
    for (double v : x) {
      m = Math.min(m, v);
    }
    return x.length == 0 ? 0 : m;
  }

  static double max(double[] x) {
    double m = Double.NEGATIVE_INFINITY;
    for (double v : x) {
      m = Math.max(m, v);
    }
    return x.length == 0 ? 0 : m;
  }

  /** Remote rollouts: engine/trainer log-prob mismatch, retries, servers in rotation, weight sync time. */
  static void addRollout(Map<String, Object> m, PolicyUpdate.Mismatch mm, int retries, int healthyServers,
      double syncSecs) {
    m.put("rollout/logp_diff_mean", mm == null ? null : mm.logpDiffMean());
    m.put("rollout/logp_diff_max", mm == null ? null : mm.logpDiffMax());
    m.put("rollout/is_ratio_mean", mm == null ? null : mm.ratioMean());
    m.put("rollout/is_ratio_min", mm == null ? null : mm.ratioMin());
    m.put("rollout/is_ratio_max", mm == null ? null : mm.ratioMax());
    m.put("rollout/is_capped_fraction", mm == null ? null : mm.cappedFraction());
    m.put("rollout/retries", retries);
    m.put("rollout/healthy_servers", healthyServers);
    m.put("time/weight_sync_s", syncSecs);
  }
}
