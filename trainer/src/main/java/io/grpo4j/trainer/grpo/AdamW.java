package io.grpo4j.trainer.grpo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import io.grpo4j.trainer.model.NoGrad;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * AdamW exactly as torch.optim.AdamW (decoupled weight decay, bias-corrected moments, eps added to the corrected
 * second-moment root), plus global-norm gradient clipping.
 *
 * <p>The moments are two flat vectors over all parameters (in the model's parameter order), and the gradients are
 * gathered into one flat vector per update: the update is a dozen whole-model ops instead of a dozen ops per
 * parameter, which is what a small model's update costs (each DJL op has a fixed cost of a few microseconds). The
 * moments are exposed per parameter name for checkpoints.
 *
 * <p>Weight decay skips biases and norm weights, as the Hugging Face Trainer (and so TRL) does.
 *
 * <p>With grpo4j's native library (scripts/setup-pytorch.sh) the update is libtorch's fused AdamW kernel (what
 * torch.optim.AdamW(fused=True) runs: one pass over parameters, gradients and moments instead of a dozen) and the
 * gradient norm a multi-tensor norm, with no flat copy of the gradients; the moments stay the same flat vectors (the
 * kernel works on per-parameter views of them). Gradients summed from shard replicas take the flat path.
 */
public final class AdamW {
  private final List<String> names = new ArrayList<>();
  private final List<NDArray> params = new ArrayList<>();
  private final List<Shape> shapes = new ArrayList<>();
  private final List<Boolean> decayed = new ArrayList<>();
  private final long[] splitPoints; // cumulative sizes, without 0 and the total
  private final int total;
  private final NDManager state;
  private NDArray m; // (total)
  private NDArray v; // (total)
  private final double beta1;
  private final double beta2;
  private final double eps;
  private final double weightDecay;
  private long step;
  private NDManager scratch; // holds the gathered gradient between gradNorm()/scaleGradients() and update()
  private NDArray flatGrad;
  private List<List<NDArray>> gradientSources; // null: the parameters' own gradients
  private Runnable afterUpdate = () -> {};
  private final boolean fused = io.grpo4j.trainer.device.NativeTorch.available();
  private double gradDivisor = 1; // fused path: clipping divides the gradients inside the update
  private List<NDArray> momentViews; // fused path: per-parameter views of m then v, rebuilt after a restore

  public AdamW(Map<String, NDArray> params, NDManager state, double beta1, double beta2, double eps,
      double weightDecay) {
    this.state = state;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
    long n = 0;
    List<Long> cuts = new ArrayList<>();
    for (var e : params.entrySet()) {
      names.add(e.getKey());
      this.params.add(e.getValue());
      shapes.add(e.getValue().getShape());
      decayed.add(decays(e.getKey()));
      n += e.getValue().size();
      cuts.add(n);
    }
    this.total = Math.toIntExact(n);
    this.splitPoints = cuts.stream().limit(Math.max(0, cuts.size() - 1)).mapToLong(Long::longValue).toArray();
    this.m = state.zeros(new Shape(total));
    this.v = state.zeros(new Shape(total));
  }

  // transformers' Trainer.get_decay_parameter_names: no decay for biases and (layer/rms) norm weights
  private static final java.util.regex.Pattern NO_DECAY =
      java.util.regex.Pattern.compile("bias|layernorm|rmsnorm|(?:^|\\.)norm(?:$|\\.)|_norm(?:$|\\.)");

  /** Whether weight decay applies to the parameter of this (Hugging Face) name. */
  public static boolean decays(String name) {
    return !NO_DECAY.matcher(name.toLowerCase(java.util.Locale.ROOT)).find();
  }

  public long step() {
    return step;
  }

  /**
   * AdamW over a model's parameters: after every update the model is told that its weights changed (it refreshes
   * the copies its no-grad forwards use).
   */
  public AdamW(io.grpo4j.trainer.model.CausalLM model, NDManager state, double beta1, double beta2, double eps,
      double weightDecay) {
    this(model.parameters(), state, beta1, beta2, eps, weightDecay);
    this.afterUpdate = model::weightsChanged;
  }

  public void setStep(long step) {
    this.step = step;
  }

  /** First moments (exp_avg) by parameter name, copied to the host. */
  public Map<String, float[]> firstMoments() {
    return perParameter(m);
  }

  /** Second moments (exp_avg_sq) by parameter name, copied to the host. */
  public Map<String, float[]> secondMoments() {
    return perParameter(v);
  }

  /** Parameter shapes by name, in the order the moments are kept. */
  public Map<String, long[]> shapes() {
    Map<String, long[]> out = new LinkedHashMap<>();
    for (int i = 0; i < names.size(); i++) {
      out.put(names.get(i), shapes.get(i).getShape());
    }
    return out;
  }

  /** Restores both moments; every parameter name must be present with its exact element count. */
  public void restoreMoments(Map<String, float[]> first, Map<String, float[]> second) {
    NDArray newM = state.create(flatten(first, "exp_avg"), new Shape(total));
    NDArray newV = state.create(flatten(second, "exp_avg_sq"), new Shape(total));
    m.close();
    v.close();
    m = newM;
    v = newV;
    momentViews = null;
  }

  private float[] flatten(Map<String, float[]> byName, String what) {
    float[] flat = new float[total];
    int off = 0;
    for (int i = 0; i < names.size(); i++) {
      float[] x = byName.get(names.get(i));
      int size = Math.toIntExact(shapes.get(i).size());
      if (x == null || x.length != size) {
        throw new IllegalArgumentException(what + "." + names.get(i) + ": " + (x == null ? "missing"
            : x.length + " values, the parameter has " + size));
      }
      System.arraycopy(x, 0, flat, off, size);
      off += size;
    }
    return flat;
  }

  private Map<String, float[]> perParameter(NDArray flat) {
    float[] all = flat.toFloatArray();
    Map<String, float[]> out = new LinkedHashMap<>();
    int off = 0;
    for (int i = 0; i < names.size(); i++) {
      int size = Math.toIntExact(shapes.get(i).size());
      out.put(names.get(i), java.util.Arrays.copyOfRange(all, off, off + size));
      off += size;
    }
    return out;
  }

  /**
   * Takes the next update's gradient from these parameter sets instead of the parameters themselves (replicas of
   * the model, see {@code CausalLM.replica}): their gradients are summed element-wise in this order, so the sum does
   * not depend on which replica finished first. Each set is in the parameters' order; cleared by the update.
   */
  public void gradientsFrom(List<java.util.Collection<NDArray>> sets) {
    if (flatGrad != null) {
      throw new IllegalStateException("gradients were already gathered for this update");
    }
    List<List<NDArray>> copy = new ArrayList<>();
    for (java.util.Collection<NDArray> set : sets) {
      if (set.size() != params.size()) {
        throw new IllegalArgumentException("a gradient source has " + set.size() + " tensors, the optimizer "
            + params.size());
      }
      copy.add(new ArrayList<>(set));
    }
    gradientSources = copy;
  }

  private boolean fusedPath() {
    return fused && gradientSources == null && total > 0;
  }

  /**
   * Sums the gradients over the ranks of a data-parallel run (one all-reduce of a flat copy, written back in
   * place), so that every rank clips and updates with the same gradient: the whole batch's. Call after the last
   * backward of an update and before {@link #gradNorm}.
   */
  public void allReduceGradients(io.grpo4j.trainer.distributed.ProcessGroup pg) {
    if (!pg.distributed() || total == 0) {
      return;
    }
    if (!fusedPath()) {
      pg.allReduceSum(gatheredGradient()); // the flat copy the update reads
      return;
    }
    try (NoGrad noGrad = NoGrad.enter(); NDManager tmp = state.newSubManager()) {
      List<NDArray> grads = gradients(tmp);
      NDList flat = new NDList(grads.size());
      for (NDArray g : grads) {
        NDArray f = g.reshape(-1);
        f.attach(tmp);
        flat.add(f);
      }
      NDArray all = flat.size() == 1 ? flat.get(0).duplicate() : ai.djl.ndarray.NDArrays.concat(flat);
      all.attach(tmp);
      pg.allReduceSum(all);
      NDList parts = grads.size() == 1 ? new NDList(all) : all.split(splitPoints);
      parts.attach(tmp);
      for (int i = 0; i < grads.size(); i++) {
        NDArray part = parts.get(i).reshape(shapes.get(i));
        part.attach(tmp);
        io.grpo4j.trainer.device.NativeTorch.copyInto(grads.get(i), part);
      }
    }
  }

  /** sqrt(sum of squared gradients): one number read back per call. */
  public double gradNorm() {
    if (total == 0) {
      return 0;
    }
    if (fusedPath()) {
      try (NDManager tmp = state.newSubManager()) {
        List<NDArray> grads = gradients(tmp);
        return io.grpo4j.trainer.device.NativeTorch.totalNorm(grads) / gradDivisor;
      }
    }
    NDArray g = gatheredGradient();
    try (NDArray sq = g.dot(g)) {
      return Math.sqrt(sq.getFloat());
    }
  }

  /** Scales every gradient by {@code factor} (clipping). */
  public void scaleGradients(double factor) {
    if (fusedPath()) {
      gradDivisor /= factor;
      return;
    }
    if (total > 0) {
      try (NoGrad noGrad = NoGrad.enter()) {
        gatheredGradient().muli(factor);
      }
    }
  }

  /** Zeroes the parameters' (and the gradient sources') gradients and forgets the gathered copy. */
  public void zeroGradients() {
    gradDivisor = 1;
    for (NDArray p : params) {
      JniUtils.zeroGrad((PtNDArray) p);
    }
    if (gradientSources != null) {
      for (List<NDArray> set : gradientSources) {
        for (NDArray p : set) {
          JniUtils.zeroGrad((PtNDArray) p);
        }
      }
      gradientSources = null;
    }
    if (scratch != null) {
      scratch.close();
      scratch = null;
      flatGrad = null;
    }
  }

  /** One update with learning rate {@code lr}; the gradients are zeroed afterwards. */
  public void update(double lr) {
    step++;
    if (total == 0) {
      return;
    }
    if (fusedPath()) {
      fusedUpdate(lr);
      zeroGradients();
      afterUpdate.run();
      return;
    }
    double bc1 = 1 - Math.pow(beta1, step);
    double bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, step));
    double stepSize = lr / bc1;
    NDArray g = gatheredGradient();
    try (NoGrad noGrad = NoGrad.enter(); NDManager tmp = state.newSubManager()) {
      // m = b1 m + (1 - b1) g ; v = b2 v + (1 - b2) g^2 ; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
      NDArray gs = g.mul(1 - beta1);
      NDArray g2 = g.square().muli(1 - beta2);
      gs.attach(tmp);
      g2.attach(tmp);
      m.muli(beta1).addi(gs);
      v.muli(beta2).addi(g2);
      NDArray denom = v.sqrt();
      denom.attach(tmp);
      denom.divi(bc2Sqrt).addi(eps);
      NDArray upd = m.div(denom);
      upd.attach(tmp);
      upd.muli(stepSize);
      NDList parts = params.size() == 1 ? new NDList(upd) : upd.split(splitPoints);
      for (int i = 0; i < params.size(); i++) {
        NDArray p = params.get(i);
        NDArray u = parts.get(i).reshape(shapes.get(i));
        u.attach(tmp);
        if (weightDecay != 0 && decayed.get(i)) {
          p.muli(1 - lr * weightDecay);
        }
        p.subi(u);
      }
      parts.attach(tmp);
    }
    zeroGradients();
    afterUpdate.run();
  }

  /** libtorch's fused AdamW kernel, once for the decayed parameters and once for the rest. */
  private void fusedUpdate(double lr) {
    if (momentViews == null) {
      momentViews = new ArrayList<>();
      for (NDArray flat : new NDArray[] {m, v}) {
        NDList parts = params.size() == 1 ? new NDList(flat) : flat.split(splitPoints);
        for (int i = 0; i < params.size(); i++) {
          NDArray view = parts.get(i).reshape(shapes.get(i));
          view.attach(state);
          momentViews.add(view);
        }
        parts.attach(state);
      }
    }
    try (NoGrad noGrad = NoGrad.enter(); NDManager tmp = state.newSubManager()) {
      List<NDArray> grads = gradients(tmp);
      for (boolean decay : new boolean[] {true, false}) {
        List<NDArray> p = new ArrayList<>();
        List<NDArray> g = new ArrayList<>();
        List<NDArray> mm = new ArrayList<>();
        List<NDArray> vv = new ArrayList<>();
        for (int i = 0; i < params.size(); i++) {
          if (decayed.get(i) == decay) {
            p.add(params.get(i));
            g.add(grads.get(i));
            mm.add(momentViews.get(i));
            vv.add(momentViews.get(params.size() + i));
          }
        }
        if (!p.isEmpty()) {
          io.grpo4j.trainer.device.NativeTorch.adamw(p, g, mm, vv, step, lr, beta1, beta2, decay ? weightDecay : 0,
              eps, gradDivisor);
        }
      }
    }
  }

  /** The parameters' own gradients (handles in {@code tmp}). */
  private List<NDArray> gradients(NDManager tmp) {
    List<NDArray> out = new ArrayList<>(params.size());
    for (NDArray p : params) {
      NDArray g = p.getGradient();
      g.attach(tmp);
      out.add(g);
    }
    return out;
  }

  /** All gradients as one flat vector (gathered once per update; gradients must be final when first asked). */
  private NDArray gatheredGradient() {
    if (flatGrad == null) {
      scratch = state.newSubManager();
      for (List<NDArray> set : gradientSources == null ? List.of(params) : gradientSources) {
        NDArray g = flatten(set);
        if (flatGrad == null) {
          flatGrad = g;
        } else {
          flatGrad.addi(g);
        }
      }
    }
    return flatGrad;
  }

  private NDArray flatten(List<NDArray> set) {
    NDList flat = new NDList(set.size());
    for (NDArray p : set) {
      NDArray grad = p.getGradient();
      grad.attach(scratch);
      NDArray f = grad.reshape(-1);
      f.attach(scratch);
      flat.add(f);
    }
    NDArray out = flat.size() == 1 ? flat.get(0).duplicate() : ai.djl.ndarray.NDArrays.concat(flat);
    out.attach(scratch);
    return out;
  }
}
