package io.grpo4j.trainer.grpo;

import io.grpo4j.datasets.DataIterator;
import io.grpo4j.trainer.rollout.Rollout;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One line of metrics.jsonl: what a researcher watches to see whether a GRPO run is healthy. */
final class StepMetrics {
  private StepMetrics() {}

  /**
   * The numbers of a step's completions that the metrics and health checks read: this rank's, or with
   * {@link #gather} every rank's side by side in rank order (the whole batch, as one process would see it).
   *
   * @param values per reward function, per completion (null where the function does not apply)
   */
  record Batch(List<String> names, Double[][] values, double[] total, int[] errors, int[] lengths, boolean[] stopped,
      int groupSize, double[] advantages, int zeroStdGroups) {
    static Batch of(Rollout r, Advantages.Result adv) {
      int n = r.generations().size();
      int[] lengths = new int[n];
      boolean[] stopped = new boolean[n];
      for (int i = 0; i < n; i++) {
        lengths[i] = r.generations().get(i).completionIds().length;
        stopped[i] = r.generations().get(i).stopped();
      }
      return new Batch(r.rewards().names(), r.rewards().values(), r.rewards().total(), r.rewards().errors(), lengths,
          stopped, r.groupSize(), adv.advantages(), adv.zeroStdGroups());
    }

    /** Every rank's batch (each the same size: whole groups, no resampling), as one; this batch alone otherwise. */
    Batch gather(io.grpo4j.trainer.distributed.ProcessGroup group) {
      if (!group.distributed()) {
        return this;
      }
      int n = total.length;
      int f = names.size();
      // one all-gather: per completion [total, length, stopped, advantage, value_0 .. value_f-1 (NaN = null)]
      int w = 4 + f;
      double[] mine = new double[n * w];
      for (int i = 0; i < n; i++) {
        mine[i * w] = total[i];
        mine[i * w + 1] = lengths[i];
        mine[i * w + 2] = stopped[i] ? 1 : 0;
        mine[i * w + 3] = advantages[i];
        for (int q = 0; q < f; q++) {
          Double v = values[q][i];
          mine[i * w + 4 + q] = v == null ? Double.NaN : v;
        }
      }
      double[] all = group.gather(mine);
      int big = all.length / w;
      double[] t = new double[big];
      int[] len = new int[big];
      boolean[] st = new boolean[big];
      double[] adv = new double[big];
      Double[][] vals = new Double[f][big];
      for (int i = 0; i < big; i++) {
        t[i] = all[i * w];
        len[i] = (int) all[i * w + 1];
        st[i] = all[i * w + 2] != 0;
        adv[i] = all[i * w + 3];
        for (int q = 0; q < f; q++) {
          double v = all[i * w + 4 + q];
          vals[q][i] = Double.isNaN(v) ? null : v;
        }
      }
      double[] err = new double[f + 1];
      for (int q = 0; q < f; q++) {
        err[q] = errors[q];
      }
      err[f] = zeroStdGroups;
      double[] sums = group.sum(err);
      int[] errs = new int[f];
      for (int q = 0; q < f; q++) {
        errs[q] = (int) sums[q];
      }
      return new Batch(names, vals, t, errs, len, st, groupSize, adv, (int) sums[f]);
    }
  }

  /** Which step this was: its number, learning rate, wall time and the data's epoch. */
  record Step(long step, double lr, double seconds, DataIterator data) {}

  /**
   * What the rollout phase counted over every rank: time sampling and scoring, tokens sampled, sampling rounds
   * (dynamic sampling) and reward calls that threw.
   */
  record Sampled(long sampleNanos, long rewardNanos, int tokens, int rounds, int rewardErrors) {}

  static Map<String, Object> of(Step at, Batch r, PolicyUpdate.Stats u, CompletionBatch cb, Sampled sampled) {
    long step = at.step();
    long sampleNanos = sampled.sampleNanos();
    int sampledTokens = sampled.tokens();
    Map<String, Object> m = new LinkedHashMap<>();
    int n = r.lengths().length;
    m.put("step", step);
    m.put("loss", u == null ? null : u.loss());
    double[] total = r.total();
    m.put("reward_mean", mean(total));
    m.put("reward_std", std(total));
    m.put("kl", u == null ? null : u.kl());
    for (int q = 0; q < r.names().size(); q++) {
      Double[] v = r.values()[q];
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
      String name = r.names().get(q);
      m.put("rewards/" + name + "/mean", c == 0 ? null : s / c);
      m.put("rewards/" + name + "/std", c < 2 ? null : Math.sqrt(Math.max(0, ss / c - (s / c) * (s / c))));
      m.put("rewards/" + name + "/errors", r.errors()[q]);
    }
    m.put("advantage_mean", mean(r.advantages()));
    m.put("advantage_std", std(r.advantages()));
    m.put("advantage_min", min(r.advantages()));
    m.put("advantage_max", max(r.advantages()));
    m.put("clip_ratio_low", u == null ? null : u.clipLow());
    m.put("clip_ratio_high", u == null ? null : u.clipHigh());
    m.put("entropy", u == null ? null : u.entropy());
    int lmin = Integer.MAX_VALUE;
    int lmax = 0;
    double lsum = 0;
    int truncated = 0;
    for (int i = 0; i < n; i++) {
      int len = r.lengths()[i];
      lmin = Math.min(lmin, len);
      lmax = Math.max(lmax, len);
      lsum += len;
      truncated += r.stopped()[i] ? 0 : 1;
    }
    m.put("completion_length_mean", n == 0 ? 0 : lsum / n);
    m.put("completion_length_min", n == 0 ? 0 : lmin);
    m.put("completion_length_max", lmax);
    m.put("truncated_fraction", n == 0 ? 0 : truncated / (double) n);
    int groups = r.groupSize() == 0 ? 0 : n / r.groupSize();
    m.put("zero_std_fraction", groups == 0 ? 1.0 : r.zeroStdGroups() / (double) groups);
    m.put("resample_rounds", sampled.rounds());
    m.put("reward_errors", sampled.rewardErrors());
    m.put("lr", at.lr());
    m.put("grad_norm", u == null ? null : u.gradNorm());
    m.put("update_skipped", u != null && u.skipped());
    m.put("step_time_s", at.seconds());
    m.put("time/sampling_s", sampleNanos / 1e9);
    m.put("time/rewards_s", sampled.rewardNanos() / 1e9);
    m.put("time/old_ref_logps_s", u == null ? 0 : u.oldRefNanos() / 1e9);
    m.put("time/forward_backward_s", u == null ? 0 : u.forwardBackwardNanos() / 1e9);
    m.put("time/optimizer_s", u == null ? 0 : u.optimizerNanos() / 1e9); // (includes the gradient all-reduce)
    m.put("time/allreduce_s", u == null ? 0 : u.allReduceNanos() / 1e9);
    m.put("sampling_tokens_per_s", sampleNanos == 0 ? 0 : sampledTokens / (sampleNanos / 1e9));
    long trainTokens = cb == null ? 0 : (long) cb.rows() * (cb.promptLength() + cb.completionLength());
    m.put("training_tokens_per_s", u == null || u.forwardBackwardNanos() == 0 ? 0
        : trainTokens / (u.forwardBackwardNanos() / 1e9));
    m.put("epoch", at.data().epoch());
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
