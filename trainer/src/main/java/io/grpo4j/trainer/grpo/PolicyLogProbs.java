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

  /**
   * Log-probs (N, C) and, when asked, the per-token entropy (N, C) of the same distributions (no gradient). On large
   * steps the entropy, a logged metric, is computed at every k-th position only ({@code entropyAt} is then 1 there
   * and 0 elsewhere; null = everywhere): reading all N * C * V probabilities twice more costs as much as a tenth of
   * the whole forward and backward of a 0.5B model at Qwen's vocabulary.
   */
  public record Result(NDArray logps, NDArray entropy, NDArray entropyAt) {}

  /** Past this many logits, the entropy is computed at a stride of positions (about this many logits' worth). */
  static final long ENTROPY_LOGITS = 1L << 28;

  public static Result compute(CausalLM model, NDManager m, CompletionBatch b, double temperature, boolean entropy) {
    return compute(model, m, b, temperature, entropy, ENTROPY_LOGITS);
  }

  /** @param entropyLogits past this many logits the entropy is taken at a stride of positions */
  static Result compute(CausalLM model, NDManager m, CompletionBatch b, double temperature, boolean entropy,
      long entropyLogits) {
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
    NDArray at = null;
    if (entropy) {
      long n = logSoftmax.getShape().get(0);
      long v = logSoftmax.getShape().get(2);
      long positions = n * c;
      int stride = (int) Math.max(1, (positions * v + entropyLogits - 1) / entropyLogits);
      NDArray ls = logSoftmax.stopGradient();
      NDArray flat = ls.reshape(positions, v);
      NDArray picked = stride == 1 ? flat : flat.get(new NDIndex("0::{}", stride)); // (M, V)
      long rowsPicked = picked.getShape().get(0);
      // -sum(p * log p) per position as a batch of dot products: no (M, V) product is written out
      NDArray probs = picked.exp();
      NDArray rows = probs.reshape(rowsPicked, 1, v);
      NDArray cols = picked.reshape(rowsPicked, v, 1);
      NDArray dots = rows.matMul(cols); // (M, 1, 1)
      NDArray h = dots.reshape(rowsPicked).neg();
      if (stride == 1) {
        ent = h.reshape(n, c);
      } else {
        NDArray all = m.zeros(new ai.djl.ndarray.types.Shape(positions));
        all.set(new NDIndex("0::{}", stride), h);
        ent = all.reshape(n, c);
        float[] mark = new float[(int) positions];
        for (int i = 0; i < positions; i += stride) {
          mark[i] = 1;
        }
        at = m.create(mark, new ai.djl.ndarray.types.Shape(n, c));
        all.close();
      }
      for (NDArray t : new NDArray[] {ls, flat, picked, probs, rows, cols, dots, h}) {
        if (t != ent) {
          t.close();
        }
      }
    }
    return new Result(logps, ent, at);
  }
}
