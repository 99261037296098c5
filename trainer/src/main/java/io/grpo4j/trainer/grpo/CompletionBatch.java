package io.grpo4j.trainer.grpo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.grpo4j.trainer.model.AttentionBias;

/**
 * Prompt + completion token layout for scoring completions: prompts left-padded to a common length P, completions
 * right-padded to C, so that row i is {@code [pad.. prompt_i | completion_i ..pad]} and the logits at positions
 * P-1 .. P+C-2 predict the completion tokens. Positions follow the attention mask, as in transformers.
 */
public final class CompletionBatch {
  private final int rows;
  private final int promptLength; // P
  private final int completionLength; // C
  private final long[] ids; // (N, P + C)
  private final int[][] mask; // (N, P + C)
  private final long[] completionIds; // (N, C)
  private final float[] completionMask; // (N, C)

  public CompletionBatch(long[][] prompts, long[][] completions, int padId) {
    this(prompts, completions, padId, 0);
  }

  /** @param minCompletionLength pad completions to at least this length (fixed shapes across steps) */
  public CompletionBatch(long[][] prompts, long[][] completions, int padId, int minCompletionLength) {
    rows = prompts.length;
    int p = 0;
    int c = Math.max(1, minCompletionLength);
    for (int i = 0; i < rows; i++) {
      p = Math.max(p, prompts[i].length);
      c = Math.max(c, completions[i].length);
    }
    promptLength = p;
    completionLength = c;
    int t = p + c;
    ids = new long[rows * t];
    mask = new int[rows][t];
    completionIds = new long[rows * c];
    completionMask = new float[rows * c];
    java.util.Arrays.fill(ids, padId);
    java.util.Arrays.fill(completionIds, padId);
    for (int i = 0; i < rows; i++) {
      long[] pr = prompts[i];
      long[] co = completions[i];
      for (int k = 0; k < pr.length; k++) {
        ids[i * t + p - pr.length + k] = pr[k];
        mask[i][p - pr.length + k] = 1;
      }
      for (int k = 0; k < co.length; k++) {
        ids[i * t + p + k] = co[k];
        mask[i][p + k] = 1;
        completionIds[i * c + k] = co[k];
        completionMask[i * c + k] = 1f;
      }
    }
  }

  /** Builds from explicit tensors (the golden case gives ids, mask and completion mask directly). */
  public CompletionBatch(long[] ids, long[] attentionMask, long[] completionMaskValues, int rows, int promptLength,
      int completionLength) {
    this.rows = rows;
    this.promptLength = promptLength;
    this.completionLength = completionLength;
    int t = promptLength + completionLength;
    this.ids = ids.clone();
    this.mask = new int[rows][t];
    this.completionIds = new long[rows * completionLength];
    this.completionMask = new float[rows * completionLength];
    for (int i = 0; i < rows; i++) {
      for (int s = 0; s < t; s++) {
        mask[i][s] = (int) attentionMask[i * t + s];
      }
      for (int k = 0; k < completionLength; k++) {
        completionIds[i * completionLength + k] = ids[i * t + promptLength + k];
        completionMask[i * completionLength + k] = completionMaskValues[i * completionLength + k];
      }
    }
  }

  public int rows() {
    return rows;
  }

  public int promptLength() {
    return promptLength;
  }

  public int completionLength() {
    return completionLength;
  }

  public float[] completionMaskValues() {
    return completionMask;
  }

  /** Tokens that count (real completion tokens). */
  public int completionTokens() {
    int n = 0;
    for (float f : completionMask) {
      n += (int) f;
    }
    return n;
  }

  /** (N, P + C) int64 */
  public NDArray inputIds(NDManager m) {
    return m.create(ids, new Shape(rows, promptLength + completionLength));
  }

  /** (N, P + C) int64 */
  public NDArray positions(NDManager m) {
    long[][] pos = AttentionBias.positions(mask);
    long[] flat = new long[rows * (promptLength + completionLength)];
    for (int i = 0; i < rows; i++) {
      System.arraycopy(pos[i], 0, flat, i * pos[i].length, pos[i].length);
    }
    return m.create(flat, new Shape(rows, promptLength + completionLength));
  }

  /**
   * (N, 1, T, T) additive causal + padding bias, or null when no prompt is left-padded: then the plain causal mask
   * is exact for every real token (right padding only ever lies in a real token's future), and a model can use
   * causal attention kernels without a mask.
   */
  public NDArray attentionBias(NDManager m) {
    if (!AttentionBias.leftPadded(mask, promptLength)) {
      return null;
    }
    return AttentionBias.of(m, mask, promptLength + completionLength);
  }

  /** (N, C) int64 targets */
  public NDArray completionIds(NDManager m) {
    return m.create(completionIds, new Shape(rows, completionLength));
  }

  /** (N, C) float 0/1 */
  public NDArray completionMask(NDManager m) {
    return m.create(completionMask, new Shape(rows, completionLength));
  }

  /** Rows [from, to) as their own batch (minibatches keep the step's padded shape). */
  public CompletionBatch slice(int from, int to) {
    int t = promptLength + completionLength;
    int n = to - from;
    long[] sIds = java.util.Arrays.copyOfRange(ids, from * t, to * t);
    long[] sMask = new long[n * t];
    long[] sCm = new long[n * completionLength];
    for (int i = 0; i < n; i++) {
      for (int s = 0; s < t; s++) {
        sMask[i * t + s] = mask[from + i][s];
      }
      for (int k = 0; k < completionLength; k++) {
        sCm[i * completionLength + k] = (long) completionMask[(from + i) * completionLength + k];
      }
    }
    return new CompletionBatch(sIds, sMask, sCm, n, promptLength, completionLength);
  }
}
