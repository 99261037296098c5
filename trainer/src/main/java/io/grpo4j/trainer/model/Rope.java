package io.grpo4j.trainer.model;

/** Rotary position embedding frequencies, including the llama3 scaling used by Llama 3.x checkpoints. */
final class Rope {
  private Rope() {}

  /** inv_freq[i] = 1 / theta^(2i / head_dim), in float32 like transformers, then scaled per the rope type. */
  static float[] inverseFrequencies(ModelConfig.RopeScaling rope, int headDim) {
    int half = headDim / 2;
    float[] inv = new float[half];
    for (int i = 0; i < half; i++) {
      float exponent = (float) (2 * i) / headDim;
      inv[i] = (float) (1.0 / Math.pow(rope.theta(), exponent));
    }
    if (rope.type().equals("llama3")) {
      applyLlama3(inv, rope);
    }
    return inv;
  }

  // transformers' _compute_llama3_parameters: long wavelengths are slowed by `factor`, short ones kept,
  // the band between them interpolated smoothly.
  private static void applyLlama3(float[] inv, ModelConfig.RopeScaling r) {
    double oldCtx = r.originalMaxPositionEmbeddings();
    double lowFreqWavelen = oldCtx / r.lowFreqFactor();
    double highFreqWavelen = oldCtx / r.highFreqFactor();
    for (int i = 0; i < inv.length; i++) {
      double f = inv[i];
      double wavelen = 2 * Math.PI / f;
      double scaled = wavelen > lowFreqWavelen ? f / r.factor() : f;
      boolean medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
      if (medium) {
        double smooth = (oldCtx / wavelen - r.lowFreqFactor()) / (r.highFreqFactor() - r.lowFreqFactor());
        scaled = (1 - smooth) * scaled / r.factor() + smooth * scaled;
      }
      inv[i] = (float) scaled;
    }
  }

  /** A (D, D) matrix R with x @ R == rotate_half(x) = concat(-x[D/2:], x[:D/2]): one matmul instead of 3 ops. */
  static float[] rotateHalfMatrix(int d) {
    int half = d / 2;
    float[] r = new float[d * d];
    for (int j = 0; j < half; j++) {
      r[(j + half) * d + j] = -1f;
      r[j * d + j + half] = 1f;
    }
    return r;
  }
}
