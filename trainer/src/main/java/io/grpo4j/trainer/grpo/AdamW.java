package io.grpo4j.trainer.grpo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import io.grpo4j.trainer.model.NoGrad;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW exactly as torch.optim.AdamW (decoupled weight decay, bias-corrected moments, eps added to the corrected
 * second-moment root), plus global-norm gradient clipping. Moments live in the model's long-lived manager under
 * the parameter names, so they can be saved and restored for resume.
 */
public final class AdamW {
  private final Map<String, NDArray> params;
  private final Map<String, NDArray> m = new LinkedHashMap<>();
  private final Map<String, NDArray> v = new LinkedHashMap<>();
  private final double beta1;
  private final double beta2;
  private final double eps;
  private final double weightDecay;
  private long step;

  public AdamW(Map<String, NDArray> params, NDManager state, double beta1, double beta2, double eps,
      double weightDecay) {
    this.params = params;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
    for (var e : params.entrySet()) {
      m.put(e.getKey(), state.zeros(e.getValue().getShape()));
      v.put(e.getKey(), state.zeros(e.getValue().getShape()));
    }
  }

  public long step() {
    return step;
  }

  public void setStep(long step) {
    this.step = step;
  }

  public Map<String, NDArray> firstMoments() {
    return m;
  }

  public Map<String, NDArray> secondMoments() {
    return v;
  }

  /** sqrt(sum of squared gradients): one number read back per call. */
  public double gradNorm() {
    if (params.isEmpty()) {
      return 0;
    }
    // gradients come back attached to the parameters' long-lived manager: move them to a scratch one
    try (NDManager tmp = params.values().iterator().next().getManager().newSubManager()) {
      NDArray total = null;
      for (NDArray p : params.values()) {
        NDArray g = p.getGradient();
        g.attach(tmp);
        NDArray sq = g.square().sum();
        total = total == null ? sq : total.add(sq);
      }
      return Math.sqrt(total.getFloat());
    }
  }

  /** Scales every gradient by {@code factor} (clipping). */
  public void scaleGradients(double factor) {
    try (NoGrad noGrad = NoGrad.enter()) {
      for (NDArray p : params.values()) {
        try (NDArray g = p.getGradient()) {
          g.muli(factor);
        }
      }
    }
  }

  public void zeroGradients() {
    for (NDArray p : params.values()) {
      JniUtils.zeroGrad((PtNDArray) p);
    }
  }

  /** One update with learning rate {@code lr}; the gradients are zeroed afterwards. */
  public void update(double lr) {
    step++;
    double bc1 = 1 - Math.pow(beta1, step);
    double bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, step));
    double stepSize = lr / bc1;
    try (NoGrad noGrad = NoGrad.enter()) { // in-place updates of leaf parameters
      for (var e : params.entrySet()) {
        NDArray p = e.getValue();
        NDArray mt = m.get(e.getKey());
        NDArray vt = v.get(e.getKey());
        try (NDArray g = p.getGradient()) {
          if (weightDecay != 0) {
            p.muli(1 - lr * weightDecay);
          }
          // m = b1 m + (1 - b1) g ; v = b2 v + (1 - b2) g^2
          try (NDArray gs = g.mul(1 - beta1); NDArray g2 = g.square()) {
            mt.muli(beta1).addi(gs);
            g2.muli(1 - beta2);
            vt.muli(beta2).addi(g2);
          }
          try (NDArray denom = vt.sqrt()) {
            denom.divi(bc2Sqrt).addi(eps);
            try (NDArray upd = mt.div(denom)) {
              upd.muli(stepSize);
              p.subi(upd);
            }
          }
        }
      }
    }
    zeroGradients();
  }
}
