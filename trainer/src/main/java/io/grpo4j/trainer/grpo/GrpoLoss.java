package io.grpo4j.trainer.grpo;

import ai.djl.ndarray.NDArray;

/**
 * The GRPO objective, token by token, as TRL's GRPOTrainer computes it:
 *
 * <pre>
 *   ratio   = exp(logp - old_logp)                    (token level), or exp(masked mean of logp - old) (sequence, GSPO)
 *   surr    = min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A)
 *   kl      = exp(ref - logp) - (ref - logp) - 1      (k3, >= 0), times ratio when bias_correction_kl
 *   loss_t  = -surr + beta * kl
 * </pre>
 *
 * aggregated per {@code loss_type}: grpo = mean over sequences of (masked sum / length); bnpo = masked sum / tokens
 * in this minibatch; dr_grpo = masked sum / (rows * max_completion_length); dapo = masked sum / tokens in the
 * whole step (all minibatches), so accumulation does not bias long or short completions.
 */
public final class GrpoLoss {
  private GrpoLoss() {}

  public record Settings(
      String lossType,
      double beta,
      double epsilonLow,
      double epsilonHigh,
      String importanceSamplingLevel,
      int maxCompletionLength,
      boolean biasCorrectionKl) {}

  /**
   * @param loss scalar to backpropagate
   * @param klMean masked mean k3 KL (scalar; zero array when beta = 0)
   * @param clipLow share of tokens clipped at 1 - eps_low with negative advantage (scalar)
   * @param clipHigh share of tokens clipped at 1 + eps_high with positive advantage (scalar)
   */
  public record Output(NDArray loss, NDArray klMean, NDArray clipLow, NDArray clipHigh) {}

  /**
   * @param logps (N, C) policy log-probs, with gradient
   * @param oldLogps (N, C) log-probs of the sampling policy, or null when this is the first pass (ratio 1)
   * @param refLogps (N, C) reference log-probs, or null when beta = 0
   * @param advantages (N)
   * @param mask (N, C) 1 for real completion tokens
   * @param stepTokens completion tokens in the whole step (the dapo normaliser)
   */
  public static Output compute(NDArray logps, NDArray oldLogps, NDArray refLogps, NDArray advantages, NDArray mask,
      Settings s, double stepTokens) {
    return compute(logps, oldLogps, refLogps, advantages, mask, s, stepTokens, null);
  }

  /**
   * As above, with {@code tokenWeights} (N, C) multiplying each token's policy-gradient term before the KL is
   * added: truncated importance sampling against the engine that sampled (TRL's vLLM correction), or null.
   */
  public static Output compute(NDArray logps, NDArray oldLogps, NDArray refLogps, NDArray advantages, NDArray mask,
      Settings s, double stepTokens, NDArray tokenWeights) {
    NDArray old = oldLogps != null ? oldLogps : logps.stopGradient();
    NDArray logRatio = logps.sub(old); // (N, C)
    NDArray lengths = mask.sum(new int[] {1}).maximum(1f); // (N)
    NDArray logWeights = s.importanceSamplingLevel().equals("sequence")
        ? logRatio.mul(mask).sum(new int[] {1}).div(lengths).expandDims(1) // (N, 1)
        : logRatio;
    NDArray ratio = logWeights.exp();
    NDArray clipped = ratio.clip((float) (1 - s.epsilonLow()), (float) (1 + s.epsilonHigh()));
    NDArray a = advantages.expandDims(1); // (N, 1)
    NDArray perToken = ratio.mul(a).minimum(clipped.mul(a)).neg(); // (N, C) or (N, 1)
    if (tokenWeights != null) {
      perToken = perToken.mul(tokenWeights); // (N, C)
    }
    NDArray tokens = mask.sum();
    NDArray klMean;
    if (s.beta() != 0) {
      NDArray delta = refLogps.sub(logps);
      NDArray kl = delta.exp().sub(delta).sub(1f); // (N, C)
      if (s.biasCorrectionKl()) {
        kl = kl.mul(ratio);
      }
      perToken = perToken.add(kl.mul((float) s.beta()));
      klMean = kl.stopGradient().mul(mask).sum().div(tokens.maximum(1f));
    } else {
      klMean = tokens.zerosLike();
    }
    if (perToken.getShape().get(1) == 1) {
      perToken = perToken.broadcast(mask.getShape());
    }
    NDArray masked = perToken.mul(mask);
    long rows = mask.getShape().get(0);
    NDArray loss = switch (s.lossType()) {
      case "grpo" -> masked.sum(new int[] {1}).div(lengths).mean();
      case "bnpo" -> masked.sum().div(tokens.maximum(1f));
      case "dr_grpo" -> masked.sum().div((float) ((double) rows * s.maxCompletionLength()));
      case "dapo" -> masked.sum().div((float) Math.max(1.0, stepTokens));
      default -> throw new IllegalArgumentException("loss_type \"" + s.lossType()
          + "\" is not grpo | bnpo | dr_grpo | dapo");
    };
    NDArray r = ratio.stopGradient();
    if (r.getShape().get(1) == 1) {
      r = r.broadcast(mask.getShape());
    }
    NDArray low = r.lt((float) (1 - s.epsilonLow())).logicalAnd(a.lt(0).broadcast(mask.getShape()))
        .toType(ai.djl.ndarray.types.DataType.FLOAT32, false).mul(mask).sum().div(tokens.maximum(1f));
    NDArray high = r.gt((float) (1 + s.epsilonHigh())).logicalAnd(a.gt(0).broadcast(mask.getShape()))
        .toType(ai.djl.ndarray.types.DataType.FLOAT32, false).mul(mask).sum().div(tokens.maximum(1f));
    return new Output(loss, klMean, low, high);
  }
}
