package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

/** The loss variants the golden case does not cover, against the formulas computed by hand in doubles. */
class GrpoLossTest {
  // two sequences, three token slots; the second sequence has two real tokens
  static final double[][] LOGP = {{-1.0, -2.0, -0.5}, {-0.7, -1.2, -3.0}};
  static final double[][] OLD = {{-1.1, -1.5, -0.5}, {-0.2, -1.3, -9.0}};
  static final double[][] REF = {{-0.9, -2.2, -0.4}, {-0.8, -1.0, -1.0}};
  static final double[][] MASK = {{1, 1, 1}, {1, 1, 0}};
  static final double[] ADV = {1.5, -0.5};

  static double handLoss(String type, boolean sequence, boolean biasKl, double beta, double lo, double hi,
      int maxLen, double stepTokens) {
    double total = 0;
    double perSeqMean = 0;
    double tokens = 0;
    for (int i = 0; i < 2; i++) {
      double len = 0;
      double seqLogRatio = 0;
      for (int t = 0; t < 3; t++) {
        len += MASK[i][t];
        seqLogRatio += (LOGP[i][t] - OLD[i][t]) * MASK[i][t];
      }
      double seqSum = 0;
      for (int t = 0; t < 3; t++) {
        double ratio = Math.exp(sequence ? seqLogRatio / len : LOGP[i][t] - OLD[i][t]);
        double clipped = Math.min(Math.max(ratio, 1 - lo), 1 + hi);
        double l = -Math.min(ratio * ADV[i], clipped * ADV[i]);
        double d = REF[i][t] - LOGP[i][t];
        double kl = Math.exp(d) - d - 1;
        if (biasKl) {
          kl *= ratio;
        }
        l += beta * kl;
        seqSum += l * MASK[i][t];
      }
      total += seqSum;
      perSeqMean += seqSum / len;
      tokens += len;
    }
    return switch (type) {
      case "grpo" -> perSeqMean / 2;
      case "bnpo" -> total / tokens;
      case "dr_grpo" -> total / (2.0 * maxLen);
      default -> total / stepTokens;
    };
  }

  static double javaLoss(String type, boolean sequence, boolean biasKl, double beta) {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray logp = arr(m, LOGP);
      GrpoLoss.Settings s = new GrpoLoss.Settings(type, beta, 0.2, 0.28, sequence ? "sequence" : "token", 4, biasKl);
      return GrpoLoss.compute(logp, arr(m, OLD), arr(m, REF), m.create(new float[] {1.5f, -0.5f}), arr(m, MASK), s,
          10).loss().getFloat();
    }
  }

  static NDArray arr(NDManager m, double[][] x) {
    float[] f = new float[6];
    for (int i = 0; i < 2; i++) {
      for (int t = 0; t < 3; t++) {
        f[i * 3 + t] = (float) x[i][t];
      }
    }
    return m.create(f, new Shape(2, 3));
  }

  @Test
  void everyVariantMatchesTheFormula() {
    for (String type : new String[] {"grpo", "bnpo", "dr_grpo", "dapo"}) {
      for (boolean seq : new boolean[] {false, true}) {
        for (boolean bias : new boolean[] {false, true}) {
          for (double beta : new double[] {0, 0.04}) {
            double want = handLoss(type, seq, bias, beta, 0.2, 0.28, 4, 10);
            assertEquals(want, javaLoss(type, seq, bias, beta), 1e-5,
                type + " sequence=" + seq + " bias_kl=" + bias + " beta=" + beta);
          }
        }
      }
    }
  }

  @Test
  void lrScheduleShapes() {
    LrSchedule warm = new LrSchedule("cosine", 1.0, 2, 10, 0.1);
    assertEquals(0.5, warm.at(1), 1e-12);
    assertEquals(1.0, warm.at(2), 1e-12);
    assertEquals(0.1, warm.at(10), 1e-12);
    assertEquals(0.55, new LrSchedule("linear", 1.0, 0, 10, 0.1).at(5), 1e-12);
    assertEquals(1.0, new LrSchedule("constant", 1.0, 0, 10, 0).at(9), 0);
  }
}
