package io.grpo4j.trainer.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Embedding;
import ai.djl.nn.core.Linear;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A Llama / Qwen2 / Qwen3 decoder on DJL: embeddings, {@code L} blocks of (RMSNorm, GQA self-attention with RoPE,
 * RMSNorm, SwiGLU MLP), a final RMSNorm and the LM head. Parameters live in one long-lived manager under their
 * Hugging Face names; every activation belongs to the manager of the input ids, so a caller that works in a
 * per-step sub-manager frees all of a step's memory by closing it.
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

  /** One decoder layer's parameters, looked up once instead of by name on every call. */
  private record Block(
      NDArray inputNorm,
      NDArray q, NDArray qBias,
      NDArray k, NDArray kBias,
      NDArray v, NDArray vBias,
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
      blocks[i] = new Block(
          params.get(l + "input_layernorm.weight"),
          params.get(l + "self_attn.q_proj.weight"), params.get(l + "self_attn.q_proj.bias"),
          params.get(l + "self_attn.k_proj.weight"), params.get(l + "self_attn.k_proj.bias"),
          params.get(l + "self_attn.v_proj.weight"), params.get(l + "self_attn.v_proj.bias"),
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

  /** Parameters by Hugging Face name (read-only view; the arrays themselves are live). */
  public Map<String, NDArray> parameters() {
    return Collections.unmodifiableMap(params);
  }

  /** Turns autograd tracking of every parameter on or off (the reference model never needs it). */
  public void setTrainable(boolean trainable) {
    params.values().forEach(p -> p.setRequiresGradient(trainable));
  }

  /**
   * Runs the decoder body.
   *
   * @param inputIds (B, T) int64 token ids, in the caller's step manager
   * @param positionIds (B, T) int64 positions ({@code cumsum(mask) - 1} for left-padded batches)
   * @param attentionBias (B, 1, T, T_past + T) float32, 0 where attending is allowed and a large negative value
   *     elsewhere (see {@link AttentionBias})
   * @param cache keys/values of earlier tokens, extended in place; null for a plain full forward
   * @return the final normed hidden states (B, T, H); pass them to {@link #logits}
   */
  public NDArray hidden(NDArray inputIds, NDArray positionIds, NDArray attentionBias, KvCache cache) {
    NDArray x = Embedding.embedding(inputIds, embed, ai.djl.ndarray.types.SparseFormat.DENSE).singletonOrThrow(); // (B, T, H)
    NDArray[] cosSin = rotaryCosSin(positionIds); // 2 x (B, 1, T, D)
    for (int i = 0; i < blocks.length; i++) {
      x = block(i, x, cosSin[0], cosSin[1], attentionBias, cache);
    }
    return rmsNorm(x, finalNorm);
  }

  /** Logits over the vocabulary for the given hidden states: (..., H) -> (..., V). */
  public NDArray logits(NDArray hidden) {
    return Linear.linear(hidden, lmHead).singletonOrThrow();
  }

  /** Convenience: full logits (B, T, V) of a batch without cache. */
  public NDArray forward(NDArray inputIds, NDArray positionIds, NDArray attentionBias) {
    return logits(hidden(inputIds, positionIds, attentionBias, null));
  }

  private NDArray block(int layer, NDArray x, NDArray cos, NDArray sin, NDArray bias, KvCache cache) {
    Block w = blocks[layer];
    long b = x.getShape().get(0);
    long t = x.getShape().get(1);
    int nH = config.numAttentionHeads();
    int nKv = config.numKeyValueHeads();
    int d = config.headDim();
    int rep = nH / nKv;

    NDArray h = rmsNorm(x, w.inputNorm());
    NDArray q = Linear.linear(h, w.q(), w.qBias()).singletonOrThrow()
        .reshape(b, t, nH, d).transpose(0, 2, 1, 3); // (B, nH, T, D)
    NDArray k = Linear.linear(h, w.k(), w.kBias()).singletonOrThrow()
        .reshape(b, t, nKv, d).transpose(0, 2, 1, 3); // (B, nKv, T, D)
    NDArray v = Linear.linear(h, w.v(), w.vBias()).singletonOrThrow()
        .reshape(b, t, nKv, d).transpose(0, 2, 1, 3); // (B, nKv, T, D)
    if (w.qNorm() != null) {
      q = rmsNorm(q, w.qNorm());
      k = rmsNorm(k, w.kNorm());
    }
    q = applyRope(q, cos, sin);
    k = applyRope(k, cos, sin);
    if (cache != null) {
      NDArray[] kv = cache.append(layer, k, v);
      k = kv[0];
      v = kv[1];
    }
    long tk = k.getShape().get(2);
    // Grouped-query attention without copying K/V per head: head h = g * rep + r uses kv head g, so the rep
    // query heads of a group are stacked along the time axis and share one matmul with their kv head.
    NDArray qg = q.mul(1.0 / Math.sqrt(d)).reshape(b, nKv, rep * t, d);
    NDArray scores = qg.matMul(k.transpose(0, 1, 3, 2)) // (B, nKv, rep*T, Tk)
        .reshape(b, nH, t, tk)
        .add(bias); // (B, nH, T, Tk)
    NDArray probs = scores.softmax(-1).reshape(b, nKv, rep * t, tk);
    NDArray attn = probs.matMul(v) // (B, nKv, rep*T, D)
        .reshape(b, nH, t, d)
        .transpose(0, 2, 1, 3)
        .reshape(b, t, (long) nH * d); // (B, T, nH*D)
    x = x.add(Linear.linear(attn, w.o()).singletonOrThrow());

    NDArray h2 = rmsNorm(x, w.postNorm());
    NDArray gate = Linear.linear(h2, w.gate()).singletonOrThrow();
    NDArray up = Linear.linear(h2, w.up()).singletonOrThrow();
    NDArray act = gate.mul(Activation.sigmoid(gate)).mul(up); // SwiGLU: silu(gate) * up
    return x.add(Linear.linear(act, w.down()).singletonOrThrow());
  }

  private NDArray rmsNorm(NDArray x, NDArray weight) {
    NDArray var = x.square().mean(new int[] {-1}, true);
    return x.div(var.add(config.rmsNormEps()).sqrt()).mul(weight);
  }

  private NDArray applyRope(NDArray x, NDArray cos, NDArray sin) {
    return x.mul(cos).add(x.matMul(rotateHalf).mul(sin));
  }

  /** cos and sin of position * inv_freq, duplicated to the full head dim like transformers: 2 x (B, 1, T, D). */
  private NDArray[] rotaryCosSin(NDArray positionIds) {
    NDArray freqs = positionIds.toType(DataType.FLOAT32, false).expandDims(-1).mul(invFreq); // (B, T, D/2)
    NDArray emb = freqs.concat(freqs, -1).expandDims(1); // (B, 1, T, D)
    return new NDArray[] {emb.cos(), emb.sin()};
  }

  /** Names of parameters holding NaN or infinity (empty when the weights are sound). */
  public java.util.List<String> nonFiniteParameters() {
    java.util.List<String> bad = new java.util.ArrayList<>();
    try (NDManager tmp = manager.newSubManager()) {
      for (var e : params.entrySet()) {
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
