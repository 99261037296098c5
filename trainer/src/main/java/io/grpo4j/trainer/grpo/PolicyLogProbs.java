package io.grpo4j.trainer.grpo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import io.grpo4j.trainer.model.CausalLM;

/**
 * Per-token log-probabilities of the completion tokens under a model: log_softmax(logits / temperature) at the
 * positions that predict each completion token, gathered at that token. Only those positions go through the LM
 * head. Runs under autograd when the caller is inside a GradientCollector, without it otherwise. The log-softmax,
 * log-probs and entropy are float32 under every precision.
 */
public final class PolicyLogProbs {
  private PolicyLogProbs() {}

  /** Log-probs (N, C) and, when asked, the per-token entropy (N, C) of the same distributions (no gradient). */
  public record Result(NDArray logps, NDArray entropy) {}

  public static Result compute(CausalLM model, NDManager m, CompletionBatch b, double temperature, boolean entropy) {
    int p = b.promptLength();
    int c = b.completionLength();
    NDArray hidden = model.hidden(b.inputIds(m), b.positions(m), b.attentionBias(m), null); // (N, P+C, H)
    NDArray predicting = hidden.get(new NDIndex(":, {}:{}, :", p - 1, p - 1 + c)); // (N, C, H)
    // (N, C, V): float32 for the log-softmax whatever the matmuls ran in (autocast does the same)
    NDArray logits = model.toFloat32(model.logits(predicting));
    if (temperature != 1.0) {
      logits = logits.div((float) temperature);
    }
    NDArray logSoftmax = logits.logSoftmax(-1); // (N, C, V)
    NDArray logps = logSoftmax.gather(b.completionIds(m).expandDims(-1), -1).squeeze(-1); // (N, C)
    NDArray ent = null;
    if (entropy) {
      // -sum(p * log p) per position as a batch of dot products: no (N, C, V) product is written out
      long n = logSoftmax.getShape().get(0);
      long v = logSoftmax.getShape().get(2);
      NDArray ls = logSoftmax.stopGradient();
      NDArray probs = ls.exp();
      NDArray rows = probs.reshape(n * c, 1, v);
      NDArray cols = ls.reshape(n * c, v, 1);
      NDArray dots = rows.matMul(cols); // (N*C, 1, 1)
      ent = dots.reshape(n, c).neg(); // (N, C)
      for (NDArray t : new NDArray[] {ls, probs, rows, cols, dots}) {
        t.close();
      }
    }
    return new Result(logps, ent);
  }
}
