package io.grpo4j.trainer.grpo;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Watches a GRPO run for the ways it can fail to learn without crashing, and says so in plain words: every group's
 * rewards equal (advantages, and so the loss's gradient, are all zero), a reward that never fires, every completion
 * cut at the length limit, entropy collapsing, KL to the reference growing without bound, updates skipped over and
 * over for non-finite values. A warning names the likely causes and what to look at; it is given once when a
 * condition has held for {@code patience} steps, then again at a doubling interval while it lasts. Each step also
 * gets {@code health/*} numbers for metrics.jsonl.
 */
public final class RunHealth {
  /**
   * @param patience steps a condition must hold before a warning (and the first steps a reward gets to fire)
   * @param entropyFloor mean token entropy (nats) below which sampling has collapsed
   * @param klCeiling KL above which a KL that keeps growing is reported
   */
  public record Settings(boolean enabled, int patience, double entropyFloor, double klCeiling) {
    public static Settings defaults() {
      return new Settings(true, 10, 0.01, 1.0);
    }
  }

  /**
   * One step, as the checks need it.
   *
   * @param rewardValues [reward][completion], null where a reward does not apply
   * @param totals weighted sum per completion
   * @param completions completion texts, in group order
   * @param entropy mean token entropy (null when no update ran), likewise kl
   */
  public record Step(long step, List<String> rewardNames, Double[][] rewardValues, double[] totals, int groupSize,
      List<String> completions, double truncatedFraction, Double entropy, Double kl, boolean skipped,
      int maxCompletionLength) {}

  /** A warning as logged: the check's name and the message. */
  public record Warning(long step, String check, String message) {}

  private final Settings settings;
  private final Consumer<Warning> sink;
  private final Map<String, Alarm> alarms = new LinkedHashMap<>();
  private int zeroSpreadStreak;
  private int truncatedStreak;
  private int lowEntropyStreak;
  private Double firstEntropy;
  private final Deque<Double> klWindow = new ArrayDeque<>();
  private final Deque<Boolean> skipWindow = new ArrayDeque<>();
  private final Map<String, RewardSeen> seen = new LinkedHashMap<>();
  private long stepsSeen;
  private int warnings;

  /** What a reward has returned so far: whether it ever varied, and its one value while it has not. */
  private static final class RewardSeen {
    Double constant;
    boolean varied;
    long count;
  }

  /** When a condition's next warning is due (doubling interval). */
  private static final class Alarm {
    long nextAt;
    long interval;
  }

  public RunHealth(Settings settings, Consumer<Warning> sink) {
    this.settings = settings;
    this.sink = sink;
  }

  /** Looks at one step; returns its health/* numbers (and emits any warning that is due). */
  public Map<String, Object> observe(Step s) {
    Map<String, Object> m = new LinkedHashMap<>();
    if (!settings.enabled()) {
      return m;
    }
    stepsSeen++;
    int p = settings.patience();
    int groups = s.groupSize() == 0 ? 0 : s.totals().length / s.groupSize();

    // 1. every group zero-spread
    boolean allFlat = true; // (no groups left at all, after dropping the flat ones, counts as flat)
    for (int g = 0; g < groups && allFlat; g++) {
      for (int i = 1; i < s.groupSize(); i++) {
        if (s.totals()[g * s.groupSize() + i] != s.totals()[g * s.groupSize()]) {
          allFlat = false;
          break;
        }
      }
    }
    zeroSpreadStreak = allFlat ? zeroSpreadStreak + 1 : 0;
    m.put("health/zero_spread_steps", zeroSpreadStreak);
    check("zero_spread", zeroSpreadStreak >= p, s.step(), () -> zeroSpreadMessage(s));

    // 2. rewards that never fire (the same value on every completion since the start)
    int silent = 0;
    for (int q = 0; q < s.rewardNames().size(); q++) {
      RewardSeen r = seen.computeIfAbsent(s.rewardNames().get(q), k -> new RewardSeen());
      for (Double v : s.rewardValues()[q]) {
        if (v == null) {
          continue;
        }
        r.count++;
        if (r.constant == null && !r.varied) {
          r.constant = v;
        } else if (!r.varied && !v.equals(r.constant)) {
          r.varied = true;
          r.constant = null;
        }
      }
      boolean never = !r.varied && r.count > 0;
      silent += never ? 1 : 0;
      String name = s.rewardNames().get(q);
      check("reward_never_fires/" + name, never && stepsSeen >= p, s.step(), () -> String.format(Locale.ROOT,
          "reward '%s' gave %s to every one of the %d completions of the first %d steps: it never fired, so it"
              + " teaches nothing. Compare a completion with what the reward expects: answer tags (are <think> /"
              + " <answer> special tokens that decoding skipped?), the field holding the answer, the extraction"
              + " mode; 'grpo rewards score' on a samples.jsonl shows each reward's verdict. A completion: %s",
          name, fmt(r.constant), r.count, stepsSeen, quote(s.completions(), 0)));
    }
    m.put("health/silent_rewards", silent);

    // 3. every completion cut at the length limit
    truncatedStreak = s.truncatedFraction() >= 1.0 ? truncatedStreak + 1 : 0;
    m.put("health/all_truncated_steps", truncatedStreak);
    check("all_truncated", truncatedStreak >= p, s.step(), () -> String.format(Locale.ROOT,
        "every completion of the last %d steps stopped at max_completion_length (%d tokens) without an end token:"
            + " answers are cut off (so answer rewards see none) and nothing teaches the model to stop. Raise"
            + " sampling.max_completion_length, check that the tokenizer's eos / generation_config stop tokens are"
            + " ones the model emits, or cold-start SFT on finished solutions first. A completion: %s",
        truncatedStreak, s.maxCompletionLength(), quote(s.completions(), 0)));

    // 4. entropy collapse
    if (s.entropy() != null) {
      if (firstEntropy == null) {
        firstEntropy = s.entropy();
      }
      lowEntropyStreak = s.entropy() < settings.entropyFloor() ? lowEntropyStreak + 1 : 0;
      m.put("health/entropy_ratio", firstEntropy > 0 ? s.entropy() / firstEntropy : null);
    }
    m.put("health/low_entropy_steps", lowEntropyStreak);
    check("entropy_collapse", lowEntropyStreak >= p, s.step(), () -> String.format(Locale.ROOT,
        "token entropy has been below %s nats for %d steps (now %s, %s at the start): the policy samples"
            + " nearly the same completion every time, groups lose their spread and GRPO stops learning. If"
            + " rewards are still rising the task may simply have one answer; otherwise lower optimizer.lr, raise"
            + " sampling.temperature, or keep a KL term (grpo.beta > 0)",
        fmt(settings.entropyFloor()), lowEntropyStreak, fmt(s.entropy()), fmt(firstEntropy)));

    // 5. KL growing without bound
    if (s.kl() != null) {
      klWindow.addLast(s.kl());
      while (klWindow.size() > p + 1) {
        klWindow.removeFirst();
      }
    }
    boolean klRunaway = false;
    if (klWindow.size() == p + 1) {
      double first = klWindow.peekFirst();
      double last = klWindow.peekLast();
      boolean rising = true;
      Double prev = null;
      int falls = 0;
      for (double k : klWindow) {
        falls += prev != null && k < prev ? 1 : 0;
        prev = k;
      }
      rising = falls <= p / 4; // mostly rising, allowing noise
      klRunaway = last > settings.klCeiling() && last > 2 * first && rising;
      m.put("health/kl_growth", first > 0 ? last / first : null);
    }
    check("kl_runaway", klRunaway, s.step(), () -> String.format(Locale.ROOT,
        "KL to the reference is %s and has grown for %d steps (from %s): the policy is drifting away from the"
            + " reference faster than the rewards justify, often a sign of reward hacking or a too high learning rate."
            + " Read samples.jsonl for degenerate completions; lower optimizer.lr or raise grpo.beta. A completion: %s",
        fmt(klWindow.peekLast()), p, fmt(klWindow.peekFirst()), quote(s.completions(), 0)));

    // 6. updates skipped again and again for non-finite values
    skipWindow.addLast(s.skipped());
    while (skipWindow.size() > p) {
      skipWindow.removeFirst();
    }
    long skips = skipWindow.stream().filter(b -> b).count();
    m.put("health/nonfinite_skips", skips);
    check("nonfinite_updates", skips >= 2, s.step(), () -> String.format(Locale.ROOT,
        "%d of the last %d steps had a non-finite loss or gradient and skipped their update: lower optimizer.lr"
            + " (or set optimizer.max_grad_norm), and check the rewards for NaN or infinite values (reward_mean in"
            + " metrics.jsonl); precision bf16 with very long completions can overflow, fp32 tells", skips,
        skipWindow.size()));

    m.put("health/warnings", warnings);
    return m;
  }

  /** Emits the warning when the condition holds and one is due; forgets the condition when it clears. */
  private void check(String name, boolean holds, long step, java.util.function.Supplier<String> message) {
    Alarm a = alarms.get(name);
    if (!holds) {
      alarms.remove(name);
      return;
    }
    if (a == null) {
      a = new Alarm();
      a.interval = settings.patience();
      a.nextAt = step;
      alarms.put(name, a);
    }
    if (step >= a.nextAt) {
      warnings++;
      sink.accept(new Warning(step, name.contains("/") ? name.substring(0, name.indexOf('/')) : name,
          message.get()));
      a.nextAt = step + a.interval;
      a.interval *= 2;
    }
  }

  private String zeroSpreadMessage(Step s) {
    double first = s.totals().length == 0 ? 0 : s.totals()[0];
    boolean allSame = true;
    for (double t : s.totals()) {
      allSame &= t == first;
    }
    StringBuilder per = new StringBuilder();
    for (int q = 0; q < s.rewardNames().size(); q++) {
      double sum = 0;
      int c = 0;
      for (Double v : s.rewardValues()[q]) {
        if (v != null) {
          sum += v;
          c++;
        }
      }
      per.append(per.length() == 0 ? "" : ", ").append(s.rewardNames().get(q)).append(" mean ")
          .append(c == 0 ? "n/a" : fmt(sum / c));
    }
    String what = allSame && first == 0 ? "every completion scored 0"
        : allSame ? "every completion scored the same " + fmt(first)
        : "within every group all completions scored the same (groups differ)";
    return String.format(Locale.ROOT, "for %d steps every group's rewards had no spread (%s; %s): all advantages"
        + " are 0, so the loss is 0 and the policy does not move. %s Two completions: %s | %s", zeroSpreadStreak,
        what, per, allSame && first == 0 ? "Nothing is rewarded: the task may be too hard for this model (cold-start"
            + " SFT first, an easier task), answers may be cut off (max_completion_length), or the rewards may not"
            + " see the answer (tags stripped in decoding?)."
            : "Rewards that everybody gets teach nothing: make the group larger, the task harder, or drop groups"
                + " without spread (grpo.filter_zero_std_groups).",
        quote(s.completions(), 0), quote(s.completions(), Math.min(1, s.completions().size() - 1)));
  }

  private static String quote(List<String> texts, int i) {
    if (texts.isEmpty() || i < 0) {
      return "(none)";
    }
    String t = texts.get(i).replace("\n", "\\n");
    return "\"" + (t.length() > 160 ? t.substring(0, 160) + "..." : t) + "\"";
  }

  private static String fmt(Double d) {
    if (d == null) {
      return "null";
    }
    if (d == Math.rint(d) && Math.abs(d) < 1e15) {
      return String.valueOf(d.longValue());
    }
    return new java.math.BigDecimal(String.format(Locale.ROOT, "%.4g", d)).stripTrailingZeros().toPlainString();
  }

  /** Warnings so far (for the report). */
  public int warnings() {
    return warnings;
  }

  /** The checks' names, for documentation and the report. */
  public static List<String> checks() {
    return new ArrayList<>(List.of("zero_spread", "reward_never_fires", "all_truncated", "entropy_collapse",
        "kl_runaway", "nonfinite_updates"));
  }
}
