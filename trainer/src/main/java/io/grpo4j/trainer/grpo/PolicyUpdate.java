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
      boolean skipped, long oldRefNanos, long forwardBackwardNanos, long optimizerNanos, Mismatch mismatch) {}

  /**
   * How far the sampling engine's log-probs are from the trainer's on the same tokens (null when the sampler gave
   * none): mean and max |logp_trainer - logp_sampler|, and the importance ratio exp(logp_trainer - logp_sampler).
   */
  public record Mismatch(double logpDiffMean, double logpDiffMax, double ratioMean, double ratioMin, double ratioMax,
      double cappedFraction) {}

  /** Truncated importance sampling against the sampler: {@code samplerLogps} (N * C, row-major) and the cap. */
  public record SamplerCorrection(float[] samplerLogps, boolean correct, double cap) {}

  public static Stats run(CausalLM policy, CausalLM reference, AdamW optimizer, CompletionBatch batch,
      double[] advantages, GrpoLoss.Settings loss, double temperature, int iterations, int minibatchSize,
      double maxGradNorm, double lr) {
    return run(policy, reference, optimizer, batch, advantages, loss, temperature, iterations, minibatchSize,
        maxGradNorm, lr, null);
  }

  public static Stats run(CausalLM policy, CausalLM reference, AdamW optimizer, CompletionBatch batch,
      double[] advantages, GrpoLoss.Settings loss, double temperature, int iterations, int minibatchSize,
      double maxGradNorm, double lr, SamplerCorrection sampler) {
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
      int c = batch.completionLength();
      NDArray samplerLogps = sampler == null ? null
          : step.create(sampler.samplerLogps(), new ai.djl.ndarray.types.Shape(n, c));
      NDArray[] tisWeights = new NDArray[minibatches];
      MismatchAccumulator mismatch = sampler == null ? null : new MismatchAccumulator(sampler.cap());
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
            NDArray mask = part.completionMask(m); // one upload, used by the mismatch, the loss and the entropy
            int mbIndex = from / mb;
            if (samplerLogps != null && it == 0) {
              // the sampling-time policy: old log-probs when kept, else this first pass's own (detached)
              NDArray base = old != null ? old.get(rows) : lp.logps().stopGradient();
              NDArray diff = base.sub(samplerLogps.get(rows)).mul(mask);
              mismatch.add(diff.toFloatArray(), part.completionMaskValues());
              if (sampler.correct()) {
                tisWeights[mbIndex] = diff.exp().minimum((float) sampler.cap());
                tisWeights[mbIndex].attach(step);
              }
            }
            GrpoLoss.Output out = GrpoLoss.compute(lp.logps(), old == null ? null : old.get(rows),
                ref == null ? null : ref.get(rows), adv.get(rows), mask, loss, stepTokens,
                tisWeights[mbIndex]);
            NDArray scaled = out.loss().mul((float) weight);
            gc.backward(scaled);
            double l = out.loss().getFloat();
            passLoss += l * weight;
            double frac = (to - from) / (double) n;
            klSum += out.klMean().getFloat() * frac;
            lowSum += out.clipLow().getFloat() * frac;
            highSum += out.clipHigh().getFloat() * frac;
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
          entSum / iterations, normSum / passes, skipped, t1 - t0, fb, opt,
          mismatch == null ? null : mismatch.result());
    }
  }

  /** Sums |diff| and ratio statistics over real completion tokens, on the CPU. */
  private static final class MismatchAccumulator {
    private final double cap;
    private double absSum;
    private double absMax;
    private double ratioSum;
    private double ratioMin = Double.POSITIVE_INFINITY;
    private double ratioMax = Double.NEGATIVE_INFINITY;
    private long capped;
    private long tokens;

    MismatchAccumulator(double cap) {
      this.cap = cap;
    }

    void add(float[] diff, float[] mask) {
      for (int i = 0; i < diff.length; i++) {
        if (mask[i] == 0 || Float.isNaN(diff[i])) {
          continue;
        }
        double d = diff[i];
        double r = Math.exp(d);
        absSum += Math.abs(d);
        absMax = Math.max(absMax, Math.abs(d));
        ratioSum += r;
        ratioMin = Math.min(ratioMin, r);
        ratioMax = Math.max(ratioMax, r);
        capped += r > cap ? 1 : 0;
        tokens++;
      }
    }

    Mismatch result() {
      if (tokens == 0) {
        return new Mismatch(0, 0, 1, 1, 1, 0);
      }
      return new Mismatch(absSum / tokens, absMax, ratioSum / tokens, ratioMin, ratioMax, capped / (double) tokens);
    }
  }
}
