package io.grpo4j.trainer.grpo;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.training.GradientCollector;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.NoGrad;

/**
 * The optimisation part of a GRPO step: old and reference log-probs without autograd, then for each of
 * {@code iterations} passes, forward + backward over minibatches (gradients accumulate), gradient clipping and one
 * AdamW update. A non-finite loss or gradient skips the update.
 */
public final class PolicyUpdate {
  private PolicyUpdate() {}

  /** Averages over the passes that ran; {@code skipped} = a pass met a non-finite loss or gradient. */
  public record Stats(double loss, double kl, double clipLow, double clipHigh, double entropy, double gradNorm,
      boolean skipped, long oldRefNanos, long forwardBackwardNanos, long optimizerNanos) {}

  public static Stats run(CausalLM policy, CausalLM reference, AdamW optimizer, CompletionBatch batch,
      double[] advantages, GrpoLoss.Settings loss, double temperature, int iterations, int minibatchSize,
      double maxGradNorm, double lr) {
    int n = batch.rows();
    int mb = minibatchSize <= 0 ? n : Math.min(minibatchSize, n);
    int minibatches = (n + mb - 1) / mb;
    double stepTokens = batch.completionTokens();
    try (NDManager step = policy.manager().newSubManager()) {
      long t0 = System.nanoTime();
      NDArray old = null;
      NDArray ref = null;
      try (NoGrad noGrad = NoGrad.enter()) {
        if (iterations > 1) {
          old = PolicyLogProbs.compute(policy, step, batch, temperature, false).logps(); // (N, C)
        }
        if (loss.beta() != 0) {
          ref = PolicyLogProbs.compute(reference, step, batch, temperature, false).logps(); // (N, C)
        }
      }
      long t1 = System.nanoTime();
      float[] advF = new float[n];
      for (int i = 0; i < n; i++) {
        advF[i] = (float) advantages[i];
      }
      NDArray adv = step.create(advF); // (N)
      double lossSum = 0;
      double klSum = 0;
      double lowSum = 0;
      double highSum = 0;
      double entSum = 0;
      double normSum = 0;
      boolean skipped = false;
      long fb = 0;
      long opt = 0;
      for (int it = 0; it < iterations; it++) {
        long f0 = System.nanoTime();
        double passLoss = 0;
        for (int from = 0; from < n; from += mb) {
          int to = Math.min(n, from + mb);
          CompletionBatch part = minibatches == 1 ? batch : batch.slice(from, to);
          double weight = switch (loss.lossType()) {
            case "grpo", "dr_grpo" -> (to - from) / (double) n; // the sum over minibatches is the full-batch mean
            case "bnpo" -> 1.0 / minibatches; // TRL: per-minibatch token mean, averaged over accumulation
            default -> 1.0; // dapo: already normalised by the whole step's tokens
          };
          try (NDManager m = step.newSubManager(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            NDIndex rows = new NDIndex("{}:{}", from, to);
            PolicyLogProbs.Result lp = PolicyLogProbs.compute(policy, m, part, temperature, true);
            GrpoLoss.Output out = GrpoLoss.compute(lp.logps(), old == null ? null : old.get(rows),
                ref == null ? null : ref.get(rows), adv.get(rows), part.completionMask(m), loss, stepTokens);
            NDArray scaled = out.loss().mul((float) weight);
            gc.backward(scaled);
            double l = out.loss().getFloat();
            passLoss += l * weight;
            double frac = (to - from) / (double) n;
            klSum += out.klMean().getFloat() * frac;
            lowSum += out.clipLow().getFloat() * frac;
            highSum += out.clipHigh().getFloat() * frac;
            NDArray mask = part.completionMask(m);
            entSum += lp.entropy().mul(mask).sum().getFloat() / Math.max(1, part.completionTokens()) * frac;
          }
        }
        long f1 = System.nanoTime();
        fb += f1 - f0;
        double norm = optimizer.gradNorm();
        if (!Double.isFinite(passLoss) || !Double.isFinite(norm)) {
          optimizer.zeroGradients();
          skipped = true;
          lossSum += passLoss;
          normSum += norm;
          break;
        }
        if (maxGradNorm > 0 && norm > maxGradNorm) {
          optimizer.scaleGradients(maxGradNorm / (norm + 1e-6));
        }
        optimizer.update(lr);
        opt += System.nanoTime() - f1;
        lossSum += passLoss;
        normSum += norm;
      }
      int passes = skipped ? 1 : iterations;
      return new Stats(lossSum / passes, klSum / iterations, lowSum / iterations, highSum / iterations,
          entSum / iterations, normSum / passes, skipped, t1 - t0, fb, opt);
    }
  }
}
