package io.grpo4j.datasets;

import io.grpo4j.datasets.source.RawRows;
import io.grpo4j.datasets.source.Sources;
import io.grpo4j.datasets.tasks.Task;
import io.grpo4j.datasets.tasks.Tasks;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * A training set and an eval set built from a {@link DatasetSpec}: files (or a synthetic task), the eval split
 * (a separate file or a seeded held-out fraction), optional de-duplication and a row limit.
 */
public final class Dataset {
  private final PromptSet train;
  private final PromptSet eval;
  private final int duplicatesDropped;
  private final int badRowsDropped;
  private final String description;

  private Dataset(PromptSet train, PromptSet eval, int duplicatesDropped, int badRowsDropped, String description) {
    this.train = train;
    this.eval = eval;
    this.duplicatesDropped = duplicatesDropped;
    this.badRowsDropped = badRowsDropped;
    this.description = description;
  }

  public PromptSet train() {
    return train;
  }

  public PromptSet eval() {
    return eval;
  }

  public int duplicatesDropped() {
    return duplicatesDropped;
  }

  public int badRowsDropped() {
    return badRowsDropped;
  }

  public String describe() {
    return description + ": " + train.size() + " train / " + eval.size() + " eval rows"
        + (duplicatesDropped > 0 ? ", " + duplicatesDropped + " duplicates dropped" : "")
        + (badRowsDropped > 0 ? ", " + badRowsDropped + " bad rows skipped" : "");
  }

  public static Dataset open(DatasetSpec spec) throws IOException {
    PromptSet all;
    String desc;
    PromptSet separateEval = null;
    if (spec.task() != null) {
      Task task = Tasks.create(spec.task().name(), spec.task().options());
      List<Example> ex = task.generate(spec.task().n(), spec.task().seed());
      all = new PromptSet(ex, range(ex.size()));
      desc = "task " + task.name() + " (seed " + spec.task().seed() + ")";
    } else {
      List<RawRows> sources = Sources.open(spec.path(), spec.format());
      int n = 0;
      for (RawRows r : sources) {
        n += r.size();
      }
      all = new PromptSet(sources, range(n), spec.fields());
      desc = spec.path();
    }
    if (spec.evalPath() != null) {
      List<RawRows> es = Sources.open(spec.evalPath(), spec.format());
      int n = 0;
      for (RawRows r : es) {
        n += r.size();
      }
      separateEval = new PromptSet(es, range(n), spec.fields());
    }
    int bad = 0;
    if (spec.onBadRow().equals("skip") || spec.dedupe()) {
      // one pass over the rows: drop malformed ones (skip mode) and repeated prompts (dedupe)
      List<Integer> keep = new ArrayList<>();
      Set<String> seen = new HashSet<>();
      int dups = 0;
      for (int i = 0; i < all.size(); i++) {
        Example e;
        try {
          e = all.get(i);
        } catch (DatasetException ex) {
          if (spec.onBadRow().equals("error")) {
            throw ex;
          }
          bad++;
          continue;
        }
        if (spec.dedupe() && !seen.add(e.userText().strip())) {
          dups++;
          continue;
        }
        keep.add(i);
      }
      all = all.subset(keep.stream().mapToInt(Integer::intValue).toArray());
      return split(spec, all, separateEval, dups, bad, desc);
    }
    return split(spec, all, separateEval, 0, 0, desc);
  }

  private static Dataset split(DatasetSpec spec, PromptSet all, PromptSet separateEval, int dups, int bad,
      String desc) {
    PromptSet train;
    PromptSet eval;
    if (separateEval != null) {
      train = all;
      eval = separateEval;
    } else if (spec.evalFraction() > 0) {
      int[] perm = permutation(all.size(), spec.seed() ^ 0x5EEDL);
      int nEval = (int) Math.round(all.size() * spec.evalFraction());
      int[] e = Arrays.copyOfRange(perm, 0, nEval);
      int[] t = Arrays.copyOfRange(perm, nEval, perm.length);
      Arrays.sort(e); // keep file order inside each split: the split is a choice of rows, not a shuffle
      Arrays.sort(t);
      train = all.subset(t);
      eval = all.subset(e);
    } else {
      train = all;
      eval = all.subset(new int[0]);
    }
    if (spec.limit() > 0 && train.size() > spec.limit()) {
      train = train.subset(range(spec.limit()));
    }
    if (spec.evalLimit() > 0 && eval.size() > spec.evalLimit()) {
      eval = eval.subset(range(spec.evalLimit()));
    }
    return new Dataset(train, eval, dups, bad, desc);
  }

  static int[] range(int n) {
    int[] r = new int[n];
    for (int i = 0; i < n; i++) {
      r[i] = i;
    }
    return r;
  }

  /** Fisher-Yates with a seeded SplittableRandom: the same seed gives the same order in every process. */
  public static int[] permutation(int n, long seed) {
    int[] p = range(n);
    SplittableRandom r = new SplittableRandom(seed);
    for (int i = n - 1; i > 0; i--) {
      int j = r.nextInt(i + 1);
      int t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
