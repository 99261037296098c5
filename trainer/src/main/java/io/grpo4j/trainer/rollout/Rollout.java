package io.grpo4j.trainer.rollout;

import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.RewardSet;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One round of sampling and scoring: G completions per prompt, decoded with special tokens kept (so rewards see
 * {@code <think>} / {@code <answer>}), scored by every reward plugin.
 *
 * @param prompts the encoded prompts
 * @param generations prompt-major, G per prompt
 * @param completions what the rewards saw, one per generation
 */
public record Rollout(List<PromptEncoder.Encoded> prompts, List<Generation> generations, List<Completion> completions,
    RewardSet.Result rewards, int groupSize) {

  /**
   * How a round samples and scores: the backend and what it is asked for, the tokenizer that turns completions back
   * into text (special tokens kept) and the rewards that score them.
   */
  public record Sampling(RolloutBackend backend, SamplingParams params, HfTokenizer tokenizer, RewardSet rewards) {}

  public static Rollout run(List<PromptEncoder.Encoded> prompts, Sampling how, int groupSize, long seed) {
    return run(prompts, how, groupSize, seed, 0);
  }

  /** @param first the index of the first prompt in the whole batch (a data-parallel rank's share; see sample) */
  public static Rollout run(List<PromptEncoder.Encoded> prompts, Sampling how, int groupSize, long seed, int first) {
    long[][] ids = new long[prompts.size()][];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = prompts.get(i).ids();
    }
    List<Generation> gens = how.backend().sample(ids, how.params(), groupSize, seed, first);
    List<Completion> completions = new ArrayList<>(gens.size());
    for (Generation g : gens) {
      PromptEncoder.Encoded p = prompts.get(g.promptIndex());
      completions.add(new Completion(p.messages(), p.text(), text(how.tokenizer(), g), g.completionIds().length,
          g.finishReason(), p.example().fields()));
    }
    return new Rollout(prompts, gens, completions, how.rewards().score(completions), groupSize);
  }

  /** The completion's text without its final stop token; every other special token stays. */
  public static String text(HfTokenizer tokenizer, Generation g) {
    long[] ids = g.completionIds();
    if (g.stopped() && ids.length > 0) {
      ids = Arrays.copyOf(ids, ids.length - 1);
    }
    return tokenizer.decode(ids);
  }

  /** Keeps only the given groups (dynamic sampling drops groups without reward spread). */
  public Rollout keepGroups(List<Integer> groups) {
    List<PromptEncoder.Encoded> p = new ArrayList<>();
    List<Generation> g = new ArrayList<>();
    List<Completion> c = new ArrayList<>();
    int r = rewards.names().size();
    int n = groups.size() * groupSize;
    Double[][] vals = new Double[r][n];
    double[] total = new double[n];
    int k = 0;
    for (int gi = 0; gi < groups.size(); gi++) {
      int grp = groups.get(gi);
      p.add(prompts.get(grp));
      for (int i = 0; i < groupSize; i++) {
        int src = grp * groupSize + i;
        Generation old = generations.get(src);
        g.add(old.withPromptIndex(gi));
        c.add(completions.get(src));
        for (int q = 0; q < r; q++) {
          vals[q][k] = rewards.values()[q][src];
        }
        total[k] = rewards.total()[src];
        k++;
      }
    }
    return new Rollout(p, g, c, new RewardSet.Result(rewards.names(), vals, total, rewards.errors(),
        rewards.errorMessages()), groupSize);
  }

  /** Concatenates two rollouts of the same group size. */
  public Rollout plus(Rollout o) {
    List<PromptEncoder.Encoded> p = new ArrayList<>(prompts);
    p.addAll(o.prompts);
    List<Generation> g = new ArrayList<>(generations);
    for (Generation x : o.generations) {
      g.add(x.withPromptIndex(x.promptIndex() + prompts.size()));
    }
    List<Completion> c = new ArrayList<>(completions);
    c.addAll(o.completions);
    int r = rewards.names().size();
    int n = g.size();
    Double[][] vals = new Double[r][n];
    double[] total = new double[n];
    int a = generations.size();
    for (int q = 0; q < r; q++) {
      System.arraycopy(rewards.values()[q], 0, vals[q], 0, a);
      System.arraycopy(o.rewards.values()[q], 0, vals[q], a, n - a);
    }
    System.arraycopy(rewards.total(), 0, total, 0, a);
    System.arraycopy(o.rewards.total(), 0, total, a, n - a);
    int[] errors = new int[r];
    for (int q = 0; q < r; q++) {
      errors[q] = rewards.errors()[q] + o.rewards.errors()[q];
    }
    List<String> msgs = new ArrayList<>(rewards.errorMessages());
    msgs.addAll(o.rewards.errorMessages());
    return new Rollout(p, g, c, new RewardSet.Result(rewards.names(), vals, total, errors, msgs), groupSize);
  }
}
