package io.grpo4j.trainer.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Embedding;
import ai.djl.nn.core.Linear;
import ai.djl.pytorch.jni.JniUtils;
import io.grpo4j.trainer.device.NativeTorch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Llama / Qwen2 / Qwen3 decoder on DJL: embeddings, {@code L} blocks of (RMSNorm, GQA self-attention with RoPE,
 * RMSNorm, SwiGLU MLP), a final RMSNorm and the LM head. Parameters live in one long-lived manager under their
 * Hugging Face names; every activation belongs to the manager of the input ids, so a caller that works in a
 * per-step sub-manager frees all of a step's memory by closing it.
 *
 * <p>The parameters are float32 (the master copy that AdamW updates and checkpoints hold). Matmuls run in the
 * {@link Precision}'s compute dtype: under autograd each forward casts the weights it needs (a cast autograd records,
 * so gradients land on the float32 parameters, as under torch.autocast); without autograd (sampling, reference and
 * old log-probs) a cached copy is used, stacked and cast once and refreshed in place after {@link #weightsChanged}.
 */
public final class CausalLM implements AutoCloseable {
  private final ModelConfig config;
  private final NDManager manager;
  private final Map<String, NDArray> params; // Hugging Face name -> fp32 array
  private final Block[] blocks;
  private final NDArray embed; // (V, H)
  private final NDArray finalNorm; // (H)
  private final NDArray lmHead; // (V, H), the embedding itself when tied
  private final NDArray invFreq; // (D/2)
  private final NDArray rotateHalf; // (D, D)
  // scalars as tensors, made once: DJL turns every Java number operand into a fresh tensor upload
  private final NDArray eps;
  private final NDArray minusHalf;
  private final NDArray attentionScale;
  private static final int[] LAST_AXIS = {-1};
  private Precision precision = Precision.FP32;
  private NDArray rotateHalfCompute; // rotateHalf in the compute dtype (bf16), else null
  private InferenceWeights inference; // the no-grad forwards' weights, built on first use
  private boolean inferenceStale;
  private boolean fusedAttention; // libtorch's scaled_dot_product_attention for full forwards (GPU + native library)
  private LoraAdapters adapters; // null: none
  private CausalLM inferenceOwner; // a base view uses its model's inference weights
  private boolean checkpointing; // gradient checkpointing: see GradientCheckpoint
  private final ThreadLocal<java.util.ArrayDeque<GradientCheckpoint>> pendingCheckpoints =
      ThreadLocal.withInitial(java.util.ArrayDeque::new);

  /** One decoder layer's parameters, looked up once instead of by name on every call. */
  private record Block(
      NDArray inputNorm,
      NDArray[] qkv, NDArray[] qkvBias, // q, k, v weights (and biases, or null), stacked at each forward
      NDArray o,
      NDArray qNorm, NDArray kNorm,
      NDArray postNorm,
      NDArray gate, NDArray up, NDArray down) {}

  /** Builds a model around parameters already created (fp32) in {@code manager}; checks names and shapes. */
  public CausalLM(ModelConfig config, NDManager manager, Map<String, NDArray> parameters) {
    this.config = config;
    this.manager = manager;
    Map<String, long[]> layout = ParameterLayout.of(config);
    for (Map.Entry<String, long[]> e : layout.entrySet()) {
      NDArray a = parameters.get(e.getKey());
      if (a == null) {
        throw new ModelFormatException("missing tensor \"" + e.getKey() + "\" (shape "
            + Arrays.toString(e.getValue()) + ") for " + config.architecture().hfName);
      }
      if (!Arrays.equals(a.getShape().getShape(), e.getValue())) {
        throw new ModelFormatException("tensor \"" + e.getKey() + "\" has shape " + a.getShape()
            + ", config.json implies " + Arrays.toString(e.getValue()));
      }
    }
    this.params = new LinkedHashMap<>();
    layout.keySet().forEach(n -> params.put(n, parameters.get(n)));
    this.blocks = new Block[config.numHiddenLayers()];
    for (int i = 0; i < blocks.length; i++) {
      String l = "model.layers." + i + ".";
      NDArray qBias = params.get(l + "self_attn.q_proj.bias");
      blocks[i] = new Block(
          params.get(l + "input_layernorm.weight"),
          new NDArray[] {params.get(l + "self_attn.q_proj.weight"), params.get(l + "self_attn.k_proj.weight"),
              params.get(l + "self_attn.v_proj.weight")},
          qBias == null ? null : new NDArray[] {qBias, params.get(l + "self_attn.k_proj.bias"),
              params.get(l + "self_attn.v_proj.bias")},
          params.get(l + "self_attn.o_proj.weight"),
          params.get(l + "self_attn.q_norm.weight"), params.get(l + "self_attn.k_norm.weight"),
          params.get(l + "post_attention_layernorm.weight"),
          params.get(l + "mlp.gate_proj.weight"), params.get(l + "mlp.up_proj.weight"),
          params.get(l + "mlp.down_proj.weight"));
    }
    this.embed = params.get("model.embed_tokens.weight");
    this.finalNorm = params.get("model.norm.weight");
    this.lmHead = config.tieWordEmbeddings() ? embed : params.get("lm_head.weight");
    int d = config.headDim();
    this.invFreq = manager.create(Rope.inverseFrequencies(config.rope(), d));
    this.rotateHalf = manager.create(Rope.rotateHalfMatrix(d), new Shape(d, d));
    this.eps = manager.create((float) config.rmsNormEps());
    this.minusHalf = manager.create(-0.5f);
    this.attentionScale = manager.create((float) (1.0 / Math.sqrt(d)));
    this.fusedAttention = manager.getDevice().isGpu() && NativeTorch.available();
  }

  public ModelConfig config() {
    return config;
  }

  public NDManager manager() {
    return manager;
  }

  public Device device() {
    return manager.getDevice();
  }

  public Precision precision() {
    return precision;
  }

  /** Sets the arithmetic of every later forward (checks that this device and PyTorch build can run it). */
  public void setPrecision(Precision p) {
    p.apply(device());
    this.precision = p;
    if (rotateHalfCompute != null) { // (replicas share it but never change precision)
      rotateHalfCompute.close();
    }
    rotateHalfCompute = null;
    if (p.mixed()) {
      rotateHalfCompute = rotateHalf.toType(p.computeType(), false);
    }
    dropInferenceWeights();
    fusedAttention = device().isGpu() && NativeTorch.available();
  }

  /** Whether full forwards use libtorch's fused attention (CUDA with the native library) rather than matmuls. */
  public boolean fusedAttention() {
    return fusedAttention;
  }

  /**
   * Chooses the attention of full forwards: libtorch's fused kernels (the default on CUDA with the native library)
   * or matmuls (the default elsewhere). Both compute the same thing; tests compare them on any device.
   */
  public void setFusedAttention(boolean fused) {
    if (fused) {
      NativeTorch.require("fused attention");
    }
    this.fusedAttention = fused;
  }

  /**
   * Says that the parameters were changed in place (an optimizer step, a weight reload): the cached inference
   * weights are refreshed, in place, before the next forward without autograd.
   */
  public void weightsChanged() {
    inferenceStale = true;
  }

  /**
   * Overwrites parameters in place (same storage, so anything holding them, a captured CUDA graph included, sees
   * the new values): a weight reload, a reference-model sync. Every name must be a parameter of this model with its
   * exact element count.
   */
  public void overwriteWeights(Map<String, float[]> values) {
    try (NoGrad g = NoGrad.enter(); NDManager tmp = manager.newSubManager()) {
      for (Map.Entry<String, float[]> e : values.entrySet()) {
        NDArray p = params.get(e.getKey());
        if (p == null || p.size() != e.getValue().length) {
          throw new IllegalArgumentException("tensor \"" + e.getKey() + "\": " + (p == null ? "not a parameter"
              : e.getValue().length + " values for a parameter of shape " + p.getShape()));
        }
        p.set(new ai.djl.ndarray.index.NDIndex("..."), tmp.create(e.getValue(), p.getShape()));
      }
    }
    weightsChanged();
  }

  /** Parameters by Hugging Face name (read-only view; the arrays themselves are live). */
  public Map<String, NDArray> parameters() {
    return Collections.unmodifiableMap(params);
  }

  /**
   * A model over the same weights (its parameters alias this one's storage, so in-place updates of this model show
   * through) whose parameters are autograd leaves of their own: a backward through the replica accumulates into the
   * replica's gradients only. Concurrent shards each get one, so that their gradients can be summed in a fixed
   * order. Closing it frees only its own handles.
   */
  public CausalLM replica(NDManager m) {
    Map<String, NDArray> alias = new LinkedHashMap<>();
    for (Map.Entry<String, NDArray> e : params.entrySet()) {
      NDArray a = e.getValue().stopGradient(); // detach(): same storage, no autograd history
      a.attach(m);
      a.setRequiresGradient(true);
      alias.put(e.getKey(), a);
    }
    CausalLM r = new CausalLM(config, m, alias);
    r.precision = precision;
    r.fusedAttention = fusedAttention;
    r.rotateHalfCompute = rotateHalfCompute; // a constant, owned by this model
    return r;
  }

  /**
   * Adds LoRA adapters to the targeted projections: from now on forwards compute W x + scaling B A x there, the base
   * weights stop tracking gradients and {@link #trainableParameters} are the adapters'.
   */
  public void attachAdapters(LoraAdapters a) {
    this.adapters = a;
    params.values().forEach(p -> p.setRequiresGradient(false));
  }

  /**
   * Folds the attached adapters into the base weights (W + scaling B A) and drops them: the same model with plain
   * projections, as PEFT's merge_and_unload (a server's faster forward).
   */
  public void mergeAdapters() {
    if (adapters == null) {
      return;
    }
    Map<String, float[]> merged = adapters.merged(params);
    LoraAdapters a = adapters;
    adapters = null;
    overwriteWeights(merged);
    a.close();
  }

  /** The attached adapters, or null. */
  public LoraAdapters adapters() {
    return adapters;
  }

  /** What an optimizer updates: the adapters when attached, else every parameter. */
  public Map<String, NDArray> trainableParameters() {
    return adapters != null ? adapters.parameters() : parameters();
  }

  /**
   * The base model under this one's adapters: the same weight arrays (no copy), the same cached inference weights,
   * no adapters. A LoRA run's reference model, as PEFT's {@code disable_adapter()} gives it. Closing it frees only
   * its own small constants.
   */
  public CausalLM baseView() {
    CausalLM v = new CausalLM(config, manager.newSubManager(), params);
    v.precision = precision;
    v.rotateHalfCompute = rotateHalfCompute;
    v.fusedAttention = fusedAttention;
    v.inferenceOwner = inferenceOwner != null ? inferenceOwner : this;
    return v;
  }

  /**
   * Gradient (activation) checkpointing: forwards under autograd keep only each decoder layer's input, and
   * {@link #backwardCheckpoints} recomputes every layer during the backward pass. Gradients are those of the plain
   * run; the activations held between forward and backward shrink from all layers' to one layer's.
   */
  public void setGradientCheckpointing(boolean on) {
    this.checkpointing = on;
  }

  public boolean gradientCheckpointing() {
    return checkpointing;
  }

  /**
   * Finishes the backward pass of every checkpointed forward this thread ran since the last call (newest first):
   * call it right after backpropagating the loss. Nothing to do without checkpointing.
   */
  public void backwardCheckpoints() {
    java.util.ArrayDeque<GradientCheckpoint> pending = pendingCheckpoints.get();
    try {
      while (!pending.isEmpty()) {
        GradientCheckpoint c = pending.pop();
        try (c) {
          c.backward();
        }
      }
    } finally {
      pending.forEach(GradientCheckpoint::close);
      pending.clear();
    }
  }

  /** Turns autograd tracking of every parameter on or off (the reference model never needs it). */
  public void setTrainable(boolean trainable) {
    if (adapters != null) {
      adapters.parameters().values().forEach(p -> p.setRequiresGradient(trainable));
      return; // the base stays frozen
    }
    params.values().forEach(p -> p.setRequiresGradient(trainable));
  }

  /**
   * Runs the decoder body.
   *
   * <p>Every intermediate's handle is closed as soon as it has been used, as Python's reference counting would: the
   * autograd graph keeps its own references to what backward needs, and freeing the rest at once lets the
   * allocator hand the same, cache-warm memory to the next op instead of fresh pages (on a small model that is
   * most of an op's cost).
   *
   * @param inputIds (B, T) int64 token ids, in the caller's step manager
   * @param positionIds (B, T) int64 positions ({@code cumsum(mask) - 1} for left-padded batches)
   * @param attentionBias (B, 1, T, T_keys) float32, 0 where attending is allowed and {@link AttentionBias#MASKED}
   *     elsewhere (see {@link AttentionBias}); T_keys = T_past + T, or a {@link StaticKvCache}'s capacity. null:
   *     plainly causal (no padding, no cache), which the fused kernels run without any mask
   * @param cache keys/values of earlier tokens, extended in place; null for a plain full forward
   * @return the final normed hidden states (B, T, H), float32; pass them to {@link #logits}
   */
  public NDArray hidden(NDArray inputIds, NDArray positionIds, NDArray attentionBias, KvStore cache) {
    if (checkpointing && cache == null && JniUtils.isGradMode()) {
      return checkpointedHidden(inputIds, positionIds, attentionBias);
    }
    try (LayerWeights.Set w = weightsForForward()) {
      NDArray x = Embedding.embedding(inputIds, embed, ai.djl.ndarray.types.SparseFormat.DENSE).singletonOrThrow(); // (B, T, H)
      Rotary rot = rotary(positionIds);
      NDArray mask = attentionBias;
      boolean fused = fusedAttention && cache == null;
      if (mask == null && !fused) {
        long t = inputIds.getShape().get(1);
        mask = AttentionBias.causalOnly(inputIds.getManager(), (int) t, (int) t);
      } else if (fused && mask != null && mask.getDataType() != precision.computeType()) {
        mask = attentionBias.toType(precision.computeType(), false); // the fused kernels take the query's dtype
      }
      for (int i = 0; i < blocks.length; i++) {
        NDArray next = block(i, w.layer(i), x, rot, mask, cache, fused);
        x.close();
        x = next;
      }
      rot.close();
      if (mask != attentionBias) {
        mask.close();
      }
      NDArray out = rmsNorm(x, finalNorm);
      x.close();
      return out;
    }
  }

  /**
   * The checkpointed forward: every layer runs without autograd and only its input is kept; the final norm runs
   * under autograd from a leaf that stands for the last layer's output, whose gradient {@link #backwardCheckpoints}
   * carries back through the recomputed layers.
   */
  private NDArray checkpointedHidden(NDArray inputIds, NDArray positionIds, NDArray attentionBias) {
    NDArray[] inputs = new NDArray[blocks.length + 1];
    try (NoGrad g = NoGrad.enter(); Rotary rot = rotary(positionIds); LayerWeights.Set w = weightsForForward()) {
      NDArray mask = layerMask(attentionBias, inputIds);
      NDArray x = Embedding.embedding(inputIds, embed, ai.djl.ndarray.types.SparseFormat.DENSE).singletonOrThrow();
      for (int i = 0; i < blocks.length; i++) {
        inputs[i] = x;
        x = block(i, w.layer(i), x, rot, mask, null, fusedAttention);
      }
      inputs[blocks.length] = x;
      if (mask != attentionBias) {
        mask.close();
      }
    }
    NDArray last = inputs[blocks.length].stopGradient();
    last.setRequiresGradient(true);
    pendingCheckpoints.get().push(new GradientCheckpoint(inputIds, positionIds, attentionBias, inputs, last));
    return rmsNorm(last, finalNorm);
  }

  /** The attention mask of a full forward, as {@link #hidden} prepares it (close it when it is not the input). */
  private NDArray layerMask(NDArray attentionBias, NDArray ids) {
    if (attentionBias == null && !fusedAttention) {
      int t = (int) ids.getShape().get(1);
      return AttentionBias.causalOnly(ids.getManager(), t, t);
    }
    if (fusedAttention && attentionBias != null && attentionBias.getDataType() != precision.computeType()) {
      return attentionBias.toType(precision.computeType(), false);
    }
    return attentionBias;
  }

  /** What one checkpointed forward keeps for its backward pass. */
  private final class GradientCheckpoint implements AutoCloseable {
    private final NDArray ids;
    private final NDArray positions;
    private final NDArray bias;
    private final NDArray[] inputs; // layer inputs, inputs[L] the last layer's output
    private final NDArray last; // the leaf the loss was backpropagated to

    GradientCheckpoint(NDArray ids, NDArray positions, NDArray bias, NDArray[] inputs, NDArray last) {
      this.ids = ids;
      this.positions = positions;
      this.bias = bias;
      this.inputs = inputs;
      this.last = last;
    }

    /** Layer by layer from the top: recompute under autograd, backpropagate the output's gradient. */
    void backward() {
      NDArray grad = last.getGradient();
      try (Rotary rot = rotary(positions)) {
        NDArray mask = layerMask(bias, ids);
        for (int i = blocks.length - 1; i >= 0; i--) {
          NDArray x = inputs[i].stopGradient();
          x.setRequiresGradient(true);
          try (LayerWeights.Set w = layerWeightsWithGrad(i)) {
            NDArray out = block(i, w.layer(i), x, rot, mask, null, fusedAttention);
            JniUtils.backward((ai.djl.pytorch.engine.PtNDArray) out, (ai.djl.pytorch.engine.PtNDArray) grad, false,
                false);
            out.close();
          }
          grad.close();
          grad = x.getGradient();
          x.close();
        }
        if (mask != bias) {
          mask.close();
        }
      }
      if (embed.hasGradient()) { // the embedding trains (full fine-tuning): its gradient from the first layer's
        NDArray e = Embedding.embedding(ids, embed, ai.djl.ndarray.types.SparseFormat.DENSE).singletonOrThrow();
        JniUtils.backward((ai.djl.pytorch.engine.PtNDArray) e, (ai.djl.pytorch.engine.PtNDArray) grad, false, false);
        e.close();
      }
      grad.close();
    }

    @Override
    public void close() {
      for (NDArray a : inputs) {
        if (a != null) {
          a.close();
        }
      }
      last.close();
    }
  }

  /**
   * Logits over the vocabulary for the given hidden states: (..., H) -> (..., V), in the compute dtype (bf16 logits
   * under bf16, as autocast gives them; callers take log-softmax in float32, see {@link #toFloat32}).
   */
  public NDArray logits(NDArray hidden) {
    if (!precision.mixed()) {
      return Linear.linear(hidden, lmHead).singletonOrThrow();
    }
    boolean grad = JniUtils.isGradMode() && lmHead.getDataType() != precision.computeType();
    NDArray head = grad ? NativeTorch.castWithGrad(lmHead, precision.computeType()) : inferenceWeights().lmHead();
    NDArray h = toCompute(hidden);
    NDArray out = Linear.linear(h, head).singletonOrThrow();
    if (h != hidden) {
      h.close();
    }
    if (grad) {
      head.close();
    }
    return out;
  }

  /** {@code a} as float32 (itself when it already is), recorded by autograd when it is on. */
  public NDArray toFloat32(NDArray a) {
    return cast(a, DataType.FLOAT32);
  }

  /** Convenience: full logits (B, T, V) of a batch without cache, float32. */
  public NDArray forward(NDArray inputIds, NDArray positionIds, NDArray attentionBias) {
    NDArray h = hidden(inputIds, positionIds, attentionBias, null);
    NDArray logits = logits(h);
    h.close();
    NDArray f = toFloat32(logits);
    if (f != logits) {
      logits.close();
    }
    return f;
  }

  private NDArray toCompute(NDArray a) {
    return cast(a, precision.computeType());
  }

  private NDArray cast(NDArray a, DataType type) {
    if (a.getDataType() == type) {
      return a;
    }
    return JniUtils.isGradMode() ? NativeTorch.castWithGrad(a, type) : a.toType(type, false);
  }

  private NDArray block(int layer, LayerWeights w, NDArray x, Rotary rot, NDArray bias, KvStore cache,
      boolean fused) {
    Block p = blocks[layer];
    long b = x.getShape().get(0);
    long t = x.getShape().get(1);
    int nH = config.numAttentionHeads();
    int nKv = config.numKeyValueHeads();
    int d = config.headDim();
    int rep = nH / nKv;

    // q, k and v from one matmul against the three weights stacked (fewer, bigger ops: this is what a small model
    // spends its time on), in (B, T, heads, D), where the rotate-half matmul needs no copy
    LoraAdapters lora = adapters != null && adapters.enabled() ? adapters : null;
    NDArray h = compute(rmsNorm(x, p.inputNorm()));
    NDArray proj = Linear.linear(h, w.qkv(), w.qkvBias()).singletonOrThrow();
    if (lora != null && lora.adapts(layer, 0, 1, 2)) {
      proj = plus(proj, lora.qkvDelta(layer, h));
    }
    NDArray qkv = heads(closing(proj, h), b, t, nH + 2 * nKv, d);
    NDArray q;
    NDArray k;
    NDArray vh;
    if (p.qNorm() == null) {
      // one rotation for all heads: v's table rows are cos = 1, sin = 0, the query rows carry 1/sqrt(D)
      NDArray rotated = closing(applyRope(qkv, rot.cosAll(), rot.sinAll()), qkv);
      NDList parts = rotated.split(new long[] {nH, nH + nKv}, 2);
      rotated.close();
      q = parts.get(0);
      k = parts.get(1);
      vh = parts.get(2);
    } else { // Qwen3: per-head RMSNorm of q and k (in float32) before the rotation
      NDList parts = qkv.split(new long[] {nH, nH + nKv}, 2);
      qkv.close();
      NDArray qn = closing(rmsNorm(parts.get(0), p.qNorm()), parts.get(0));
      NDArray kn = closing(rmsNorm(parts.get(1), p.kNorm()), parts.get(1));
      q = closing(applyRope(qn, rot.cosQ(), rot.sinQ()), qn); // carries the 1/sqrt(D) attention scale
      k = closing(applyRope(kn, rot.cos(), rot.sin()), kn);
      vh = parts.get(2);
    }
    // the rotation ran in float32 (float32 tables, as transformers under autocast); attention takes the compute dtype
    q = compute(q);
    k = compute(k);
    vh = compute(vh);
    NDArray kt = closing(k.transpose(0, 2, 1, 3), k); // (B, nKv, T, D)
    NDArray v = closing(vh.transpose(0, 2, 1, 3), vh);
    if (cache != null) {
      NDArray[] kv = cache.append(layer, kt, v); // the cache owns the full arrays from here on
      kt = kv[0];
      v = kv[1];
    }
    NDArray attn;
    if (fused) {
      attn = fusedAttention(q, kt, v, bias, b, t);
    } else if (cache != null && t == 1 && decodeKernel(q, bias)) {
      attn = closing(NativeTorch.decodeAttention(q, kt, v, bias), q);
    } else {
      attn = attention(q, kt, v, bias, b, t);
    }
    if (cache == null) {
      kt.close();
      v.close();
    }
    NDArray o = Linear.linear(attn, w.o()).singletonOrThrow();
    if (lora != null && lora.adapts(layer, 3)) {
      o = plus(o, lora.delta(layer, 3, attn));
    }
    o = closing(o, attn);
    NDArray x1 = closing(x.add(o), o); // float32 residual stream (float32 + bf16 promotes)

    // gate and up stay two matmuls: one stacked matmul, split into views, measured no faster for the update here
    // (unlike q/k/v, whose views are copied for attention anyway)
    NDArray h2 = compute(rmsNorm(x1, p.postNorm()));
    NDArray gate = Linear.linear(h2, w.gate()).singletonOrThrow();
    NDArray up = Linear.linear(h2, w.up()).singletonOrThrow();
    if (lora != null && lora.adapts(layer, 4)) {
      gate = plus(gate, lora.delta(layer, 4, h2));
    }
    if (lora != null && lora.adapts(layer, 5)) {
      up = plus(up, lora.delta(layer, 5, h2));
    }
    h2.close();
    NDArray silu = silu(gate); // SwiGLU: silu(gate) * up
    NDArray act = closing(silu.mul(up), silu, up);
    NDArray down = Linear.linear(act, w.down()).singletonOrThrow();
    if (lora != null && lora.adapts(layer, 6)) {
      down = plus(down, lora.delta(layer, 6, act));
    }
    down = closing(down, act);
    NDArray out = closing(x1.add(down), down);
    x1.close();
    return out;
  }

  /**
   * Grouped-query attention with matmuls, without copying K/V per head: head h = g * rep + r uses kv head g, so the
   * rep query heads of a group are stacked along the time axis and share one matmul with their kv head. Softmax in
   * float32 (the bias is float32, so bf16 scores are promoted), as transformers' eager attention does it.
   *
   * @param q (B, T, nH, D) with the 1/sqrt(D) scale applied; kt, v (B, nKv, Tk, D)
   * @return (B, T, nH*D) in the compute dtype
   */
  private NDArray attention(NDArray q, NDArray kt, NDArray v, NDArray bias, long b, long t) {
    int nH = config.numAttentionHeads();
    int nKv = config.numKeyValueHeads();
    int d = config.headDim();
    int rep = nH / nKv;
    long tk = kt.getShape().get(2);
    NDArray qt = closing(q.transpose(0, 2, 1, 3), q);
    NDArray qg = closing(qt.reshape(b, nKv, (long) rep * t, d), qt);
    NDArray kT = kt.transpose(0, 1, 3, 2);
    NDArray raw = closing(qg.matMul(kT), qg, kT); // (B, nKv, rep*T, Tk)
    NDArray scores = closing(raw.reshape(b, nH, t, tk), raw);
    NDArray biased = closing(scores.add(bias), scores); // (B, nH, T, Tk)
    NDArray probs = compute(closing(biased.softmax(-1), biased));
    NDArray pg = closing(probs.reshape(b, nKv, (long) rep * t, tk), probs);
    NDArray ctx = closing(pg.matMul(v), pg); // (B, nKv, rep*T, D)
    NDArray ctxH = closing(ctx.reshape(b, nH, t, d), ctx);
    NDArray ctxT = closing(ctxH.transpose(0, 2, 1, 3), ctxH);
    return closing(ctxT.reshape(b, t, (long) nH * d), ctxT); // (B, T, nH*D)
  }

  /**
   * The same through libtorch's scaled_dot_product_attention (flash / memory-efficient kernels: no (T, Tk) score
   * matrix kept for backward). Without a mask (no padding) it is causal, the flash kernels' case, grouped-query as
   * is; with one, K/V heads are repeated for the query heads: the memory-efficient kernel, the one that takes a
   * padding mask, has no grouped-query mode.
   */
  private NDArray fusedAttention(NDArray q, NDArray kt, NDArray v, NDArray mask, long b, long t) {
    int nH = config.numAttentionHeads();
    int nKv = config.numKeyValueHeads();
    int d = config.headDim();
    long tk = kt.getShape().get(2);
    NDArray qt = closing(q.transpose(0, 2, 1, 3), q); // (B, nH, T, D)
    NDArray k = kt;
    NDArray vv = v;
    if (nH != nKv && mask != null) {
      k = repeatHeads(kt, b, nKv, nH / nKv, tk, d);
      vv = repeatHeads(v, b, nKv, nH / nKv, tk, d);
    }
    // q already carries 1/sqrt(D) (folded into the rotary tables)
    NDArray ctx = closing(NativeTorch.attention(qt, k, vv, mask, 1.0), qt); // (B, nH, T, D)
    if (k != kt) {
      k.close();
      vv.close();
    }
    NDArray ctxT = closing(ctx.transpose(0, 2, 1, 3), ctx);
    return closing(ctxT.reshape(b, t, (long) nH * d), ctxT);
  }

  /**
   * Whether a decoding step's attention runs as the native library's CPU loops ({@link NativeTorch#decodeAttention})
   * rather than matmuls: float32 on the CPU without autograd, with a (B, 1, 1, S) float32 bias.
   */
  private boolean decodeKernel(NDArray q, NDArray bias) {
    return !device().isGpu() && NativeTorch.available() && q.getDataType() == DataType.FLOAT32 && bias != null
        && bias.getDataType() == DataType.FLOAT32 && bias.getShape().get(2) == 1 && !JniUtils.isGradMode();
  }

  /** x * sigmoid(x), closing x: one fused kernel with the native library, else two ops. */
  private static NDArray silu(NDArray x) {
    if (NativeTorch.available()) {
      return closing(NativeTorch.silu(x), x);
    }
    NDArray sig = Activation.sigmoid(x);
    return closing(x.mul(sig), x, sig);
  }

  /** (B, nKv, T, D) -> (B, nKv * rep, T, D), kv head g serving query heads g*rep .. g*rep+rep-1. */
  private static NDArray repeatHeads(NDArray x, long b, int nKv, int rep, long t, int d) {
    NDArray e = x.expandDims(2);
    NDArray wide = closing(e.broadcast(b, nKv, rep, t, d), e);
    return closing(wide.reshape(b, (long) nKv * rep, t, d), wide);
  }

  /** Returns {@code a} in the compute dtype, closing {@code a}'s handle when a cast was made. */
  private NDArray compute(NDArray a) {
    NDArray c = toCompute(a);
    if (c != a) {
      a.close();
    }
    return c;
  }

  /** (B, T, heads*D) -> (B, T, heads, D), closing the flat handle. */
  private static NDArray heads(NDArray flat, long b, long t, int heads, int d) {
    return closing(flat.reshape(b, t, heads, d), flat);
  }

  /** y + delta (a LoRA correction), closing both handles. */
  private static NDArray plus(NDArray y, NDArray delta) {
    return closing(y.add(delta), y, delta);
  }

  /** Returns {@code result} after closing the handles of intermediates it was computed from. */
  private static NDArray closing(NDArray result, NDArray... used) {
    for (NDArray u : used) {
      u.close();
    }
    return result;
  }

  /**
   * x * rsqrt(mean(x^2) + eps) * weight in float32, as transformers' Qwen2RMSNorm / LlamaRMSNorm (which upcast a
   * half-precision input first).
   */
  private NDArray rmsNorm(NDArray input, NDArray weight) {
    NDArray x = toFloat32(input);
    NDArray sq = x.square();
    NDArray var = closing(sq.mean(LAST_AXIS, true), sq);
    NDArray shifted = closing(var.add(eps), var);
    NDArray inv = closing(shifted.pow(minusHalf), shifted);
    NDArray normed = closing(x.mul(inv), inv);
    if (x != input) {
      x.close();
    }
    return closing(normed.mul(weight), normed);
  }

  /**
   * x * cos + rotate_half(x) * sin on (B, T, heads, D) with float32 (B, T, 1, D) tables, so the result is float32
   * whatever x is (rotate_half itself is exact in any dtype: it only moves and negates).
   */
  private NDArray applyRope(NDArray x, NDArray cos, NDArray sin) {
    NDArray rotated = x.matMul(x.getDataType() == DataType.FLOAT32 ? rotateHalf : rotateHalfCompute);
    NDArray a = x.mul(cos);
    NDArray c = closing(rotated.mul(sin), rotated);
    return closing(a.add(c), a, c);
  }

  /** cos and sin of position * inv_freq, duplicated to the full head dim like transformers, as (B, T, 1, D). */
  private Rotary rotary(NDArray positionIds) {
    NDArray pos = positionIds.toType(DataType.FLOAT32, false);
    NDArray col = closing(pos.expandDims(-1), pos);
    NDArray freqs = closing(col.mul(invFreq), col); // (B, T, D/2)
    NDArray both = closing(freqs.concat(freqs, -1), freqs);
    NDArray emb = closing(both.expandDims(2), both); // (B, T, 1, D)
    NDArray cos = emb.cos();
    NDArray sin = closing(emb.sin(), emb);
    NDArray cosQ = cos.mul(attentionScale);
    NDArray sinQ = sin.mul(attentionScale);
    if (blocks.length > 0 && blocks[0].qNorm() != null) {
      return new Rotary(cos, sin, cosQ, sinQ, null, null);
    }
    // (B, T, nH + 2 nKv, D) for the stacked q | k | v heads: v passes through (cos 1, sin 0)
    long b = cos.getShape().get(0);
    long t = cos.getShape().get(1);
    int nH = config.numAttentionHeads();
    int nKv = config.numKeyValueHeads();
    int d = config.headDim();
    NDManager m = cos.getManager();
    try (NDArray cq = cosQ.broadcast(b, t, nH, d); NDArray ck = cos.broadcast(b, t, nKv, d);
        NDArray cv = m.ones(new Shape(b, t, nKv, d)); NDArray sq = sinQ.broadcast(b, t, nH, d);
        NDArray sk = sin.broadcast(b, t, nKv, d); NDArray sv = m.zeros(new Shape(b, t, nKv, d))) {
      NDArray cosAll = NDArrays.concat(new NDList(cq, ck, cv), 2);
      NDArray sinAll = NDArrays.concat(new NDList(sq, sk, sv), 2);
      return new Rotary(cos, sin, cosQ, sinQ, cosAll, sinAll);
    }
  }

  /**
   * Rotary tables for one forward, (B, T, 1, D); the query ones carry the attention scale 1/sqrt(D). The stacked
   * tables (B, T, nH + 2 nKv, D) rotate q, k and v in one go (null for Qwen3, whose q/k norm comes first).
   */
  private record Rotary(NDArray cos, NDArray sin, NDArray cosQ, NDArray sinQ, NDArray cosAll, NDArray sinAll)
      implements AutoCloseable {
    @Override
    public void close() {
      for (NDArray a : new NDArray[] {cos, sin, cosQ, sinQ, cosAll, sinAll}) {
        if (a != null) {
          a.close();
        }
      }
    }
  }

  /** One layer's matmul weights in the compute dtype, q/k/v stacked (and their biases, or null). */
  record LayerWeights(NDArray qkv, NDArray qkvBias, NDArray o, NDArray gate, NDArray up, NDArray down) {
    /** The weights of one forward: per-forward casts (closed after it) or the cached inference copy. */
    record Set(LayerWeights[] layers, List<NDArray> owned) implements AutoCloseable {
      LayerWeights layer(int i) {
        return layers[i];
      }

      @Override
      public void close() {
        owned.forEach(NDArray::close);
      }
    }
  }

  /**
   * Under autograd: q/k/v stacked and every matmul weight cast for this forward (autograd-recorded, so gradients
   * reach the float32 parameters), freed after it. Without: the cached inference weights.
   */
  private LayerWeights.Set weightsForForward() {
    if (!JniUtils.isGradMode()) {
      return new LayerWeights.Set(inferenceWeights().layers(), List.of());
    }
    return weightsWithGrad(0, blocks.length);
  }

  /** One layer's weights under autograd (a checkpointed layer's recomputation). */
  private LayerWeights.Set layerWeightsWithGrad(int i) {
    return weightsWithGrad(i, i + 1);
  }

  /** Layers [from, to) with their weights stacked and cast under autograd; the casts are freed with the set. */
  private LayerWeights.Set weightsWithGrad(int from, int to) {
    List<NDArray> owned = new ArrayList<>();
    LayerWeights[] layers = new LayerWeights[blocks.length];
    for (int i = from; i < to; i++) {
      Block p = blocks[i];
      layers[i] = new LayerWeights(
          owned(owned, stacked(p.qkv())), p.qkvBias() == null ? null : owned(owned, stacked(p.qkvBias())),
          owned(owned, toCompute(p.o())), owned(owned, toCompute(p.gate())), owned(owned, toCompute(p.up())),
          owned(owned, toCompute(p.down())));
    }
    owned.removeIf(a -> parameterHandle(a));
    return new LayerWeights.Set(layers, owned);
  }

  private boolean parameterHandle(NDArray a) {
    for (NDArray p : params.values()) {
      if (p == a) {
        return true;
      }
    }
    return false;
  }

  private static NDArray owned(List<NDArray> owned, NDArray a) {
    owned.add(a);
    return a;
  }

  /** Weights stacked along the output axis, in the compute dtype. */
  private NDArray stacked(NDArray[] parts) {
    NDArray cat = NDArrays.concat(new NDList(parts), 0);
    return compute(cat);
  }

  /** The no-grad forwards' weights: stacked and cast once, refreshed in place after {@link #weightsChanged()}. */
  private InferenceWeights inferenceWeights() {
    if (inferenceOwner != null) {
      return inferenceOwner.inferenceWeights();
    }
    if (inference == null) {
      inference = new InferenceWeights();
      inferenceStale = false;
    } else if (inferenceStale) {
      inference.refresh();
      inferenceStale = false;
    }
    return inference;
  }

  private void dropInferenceWeights() {
    if (inference != null) {
      inference.close();
      inference = null;
    }
  }

  /**
   * Copies of the matmul weights as no-grad forwards use them: q/k/v stacked, in the compute dtype. Arrays that
   * need neither (fp32 o/gate/up/down) are the parameters themselves. Refreshing writes into the same storage, so
   * a CUDA graph captured over these weights stays valid after an optimizer step.
   */
  private final class InferenceWeights implements AutoCloseable {
    private final NDManager store = manager.newSubManager();
    private final LayerWeights[] layers = new LayerWeights[blocks.length];
    private NDArray lmHead;

    InferenceWeights() {
      try (NoGrad g = NoGrad.enter()) {
        for (int i = 0; i < blocks.length; i++) {
          Block p = blocks[i];
          layers[i] = new LayerWeights(kept(stackedCopy(p.qkv())),
              p.qkvBias() == null ? null : kept(stackedCopy(p.qkvBias())), keptCast(p.o()), keptCast(p.gate()),
              keptCast(p.up()), keptCast(p.down()));
        }
        lmHead = keptCast(CausalLM.this.lmHead);
      }
    }

    LayerWeights[] layers() {
      return layers;
    }

    NDArray lmHead() {
      return lmHead;
    }

    private NDArray stackedCopy(NDArray[] parts) {
      NDArray cat = NDArrays.concat(new NDList(parts), 0);
      if (!precision.mixed() || cat.getDataType() == precision.computeType()) {
        return cat; // (a frozen base already in the compute dtype: toType would hand back cat itself)
      }
      NDArray c = cat.toType(precision.computeType(), false);
      cat.close();
      return c;
    }

    private NDArray keptCast(NDArray p) {
      // a frozen base may already hold the compute dtype: then the parameter itself serves
      return precision.mixed() && p.getDataType() != precision.computeType()
          ? kept(p.toType(precision.computeType(), false)) : p;
    }

    private NDArray kept(NDArray a) {
      a.attach(store);
      return a;
    }

    /** Recomputes every copy from the parameters into its existing storage. */
    void refresh() {
      try (NoGrad g = NoGrad.enter(); NDManager tmp = manager.newSubManager()) {
        for (int i = 0; i < blocks.length; i++) {
          Block p = blocks[i];
          LayerWeights w = layers[i];
          overwrite(w.qkv(), stackedCopy(p.qkv()), tmp);
          if (w.qkvBias() != null) {
            overwrite(w.qkvBias(), stackedCopy(p.qkvBias()), tmp);
          }
          if (precision.mixed()) {
            overwrite(w.o(), p.o(), tmp);
            overwrite(w.gate(), p.gate(), tmp);
            overwrite(w.up(), p.up(), tmp);
            overwrite(w.down(), p.down(), tmp);
            overwrite(lmHead, CausalLM.this.lmHead, tmp);
          }
        }
      }
    }

    /** dst := src (cast to dst's dtype), in dst's own storage. */
    private void overwrite(NDArray dst, NDArray src, NDManager tmp) {
      if (dst == src) {
        return;
      }
      NDArray value = src.getDataType() == dst.getDataType() ? src : src.toType(dst.getDataType(), false);
      if (value != src || !parameterHandle(src)) {
        value.attach(tmp);
      }
      if (NativeTorch.available()) {
        NativeTorch.copyInto(dst, value);
      } else {
        dst.set(new ai.djl.ndarray.index.NDIndex("..."), value);
      }
    }

    @Override
    public void close() {
      store.close();
    }
  }


  /** Names of parameters holding NaN or infinity (empty when the weights are sound). */
  public java.util.List<String> nonFiniteParameters() {
    java.util.List<String> bad = new java.util.ArrayList<>();
    Map<String, NDArray> all = new LinkedHashMap<>(params);
    if (adapters != null) {
      all.putAll(adapters.parameters());
    }
    try (NDManager tmp = manager.newSubManager()) {
      for (var e : all.entrySet()) {
        NDArray p = e.getValue().stopGradient();
        p.attach(tmp);
        if (p.isNaN().logicalOr(p.isInfinite()).any().getBoolean()) {
          bad.add(e.getKey());
        }
      }
    }
    return bad;
  }

  @Override
  public void close() {
    manager.close();
  }
}
