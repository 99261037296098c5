package io.grpo4j.trainer.grpo;

/**
 * Group-relative advantages: each completion's reward minus its group's mean, divided by the group's standard
 * deviation (Bessel-corrected, as torch.std) plus 1e-4 ({@code scale: group}), by the whole batch's standard
 * deviation ({@code batch}), or not at all ({@code none}, Dr. GRPO). A group whose rewards are all equal carries
 * zero advantage, and a group of one completion has nothing to compare with: zero too.
 */
public final class Advantages {
  public static final double EPS = 1e-4;

  private Advantages() {}

  /** The result and the count of groups whose rewards had no spread. */
  public record Result(double[] advantages, int zeroStdGroups, double[] groupStd) {}

  /** @param rewards prompt-major: group g is rewards[g*G .. g*G+G-1] */
  public static Result compute(double[] rewards, int groupSize, String scale) {
    int n = rewards.length;
    if (groupSize < 1 || n % groupSize != 0) {
      throw new IllegalArgumentException(n + " rewards do not split into groups of " + groupSize);
    }
    int groups = n / groupSize;
    double[] adv = new double[n];
    double[] std = new double[groups];
    int zero = 0;
    for (int g = 0; g < groups; g++) {
      double mean = 0;
      for (int i = 0; i < groupSize; i++) {
        mean += rewards[g * groupSize + i];
      }
      mean /= groupSize;
      double ss = 0;
      for (int i = 0; i < groupSize; i++) {
        double d = rewards[g * groupSize + i] - mean;
        ss += d * d;
      }
      boolean same = true;
      for (int i = 1; i < groupSize; i++) {
        same &= rewards[g * groupSize + i] == rewards[g * groupSize];
      }
      // equal rewards give exactly 0 (not the rounding of sum / G, which the std scaling would blow up to 1e-13)
      std[g] = groupSize > 1 && !same ? Math.sqrt(ss / (groupSize - 1)) : 0.0;
      if (std[g] < 1e-8) { // TRL: isclose(std, 0)
        zero++;
      }
      for (int i = 0; i < groupSize; i++) {
        adv[g * groupSize + i] = groupSize > 1 && !same ? rewards[g * groupSize + i] - mean : 0.0;
      }
    }
    switch (scale) {
      case "group" -> {
        for (int i = 0; i < n; i++) {
          adv[i] /= std[i / groupSize] + EPS;
        }
      }
      case "batch" -> {
        double mean = 0;
        for (double r : rewards) {
          mean += r;
        }
        mean /= n;
        double ss = 0;
        for (double r : rewards) {
          ss += (r - mean) * (r - mean);
        }
        double s = n > 1 ? Math.sqrt(ss / (n - 1)) : 0.0;
        for (int i = 0; i < n; i++) {
          adv[i] /= s + EPS;
        }
      }
      case "none" -> {
        // Dr. GRPO: no std normalisation
      }
      default -> throw new IllegalArgumentException("scale_rewards \"" + scale + "\" is not group | batch | none");
    }
    return new Result(adv, zero, std);
  }
}
