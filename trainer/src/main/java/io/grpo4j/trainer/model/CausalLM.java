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
  // scalars as tensors, made once: DJL turns every Java number operand into a fresh tensor upload
  private final NDArray eps;
  private final NDArray minusHalf;
  private final NDArray attentionScale;
  private static final int[] LAST_AXIS = {-1};

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
    return new CausalLM(config, m, alias);
  }

  /** Turns autograd tracking of every parameter on or off (the reference model never needs it). */
  public void setTrainable(boolean trainable) {
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
   * @param attentionBias (B, 1, T, T_past + T) float32, 0 where attending is allowed and a large negative value
   *     elsewhere (see {@link AttentionBias})
   * @param cache keys/values of earlier tokens, extended in place; null for a plain full forward
   * @return the final normed hidden states (B, T, H); pass them to {@link #logits}
   */
  public NDArray hidden(NDArray inputIds, NDArray positionIds, NDArray attentionBias, KvCache cache) {
    NDArray x = Embedding.embedding(inputIds, embed, ai.djl.ndarray.types.SparseFormat.DENSE).singletonOrThrow(); // (B, T, H)
    Rotary rot = rotary(positionIds);
    for (int i = 0; i < blocks.length; i++) {
      NDArray next = block(i, x, rot, attentionBias, cache);
      x.close();
      x = next;
    }
    rot.close();
    NDArray out = rmsNorm(x, finalNorm);
    x.close();
    return out;
  }

  /** Logits over the vocabulary for the given hidden states: (..., H) -> (..., V). */
  public NDArray logits(NDArray hidden) {
    return Linear.linear(hidden, lmHead).singletonOrThrow();
  }

  /** Convenience: full logits (B, T, V) of a batch without cache. */
  public NDArray forward(NDArray inputIds, NDArray positionIds, NDArray attentionBias) {
    NDArray h = hidden(inputIds, positionIds, attentionBias, null);
    NDArray logits = logits(h);
    h.close();
    return logits;
  }

  private NDArray block(int layer, NDArray x, Rotary rot, NDArray bias, KvCache cache) {
    Block w = blocks[layer];
    long b = x.getShape().get(0);
    long t = x.getShape().get(1);
    int nH = config.numAttentionHeads();
    int nKv = config.numKeyValueHeads();
    int d = config.headDim();
    int rep = nH / nKv;

    // q, k and v from one matmul against the three weights stacked (fewer, bigger ops: this is what a small model
    // spends its time on), in (B, T, heads, D), where the rotate-half matmul needs no copy
    NDArray h = rmsNorm(x, w.inputNorm());
    NDArray qkv = heads(stackedLinear(h, w.qkv(), w.qkvBias()), b, t, nH + 2 * nKv, d);
    h.close();
    NDArray q;
    NDArray k;
    NDArray vh;
    if (w.qNorm() == null) {
      // one rotation for all heads: v's table rows are cos = 1, sin = 0, the query rows carry 1/sqrt(D)
      NDArray rotated = closing(applyRope(qkv, rot.cosAll(), rot.sinAll()), qkv);
      NDList parts = rotated.split(new long[] {nH, nH + nKv}, 2);
      rotated.close();
      q = parts.get(0);
      k = parts.get(1);
      vh = parts.get(2);
    } else { // Qwen3: per-head RMSNorm of q and k before the rotation
      NDList parts = qkv.split(new long[] {nH, nH + nKv}, 2);
      qkv.close();
      NDArray qn = closing(rmsNorm(parts.get(0), w.qNorm()), parts.get(0));
      NDArray kn = closing(rmsNorm(parts.get(1), w.kNorm()), parts.get(1));
      q = closing(applyRope(qn, rot.cosQ(), rot.sinQ()), qn); // carries the 1/sqrt(D) attention scale
      k = closing(applyRope(kn, rot.cos(), rot.sin()), kn);
      vh = parts.get(2);
    }
    NDArray kt = closing(k.transpose(0, 2, 1, 3), k); // (B, nKv, T, D)
    NDArray v = closing(vh.transpose(0, 2, 1, 3), vh);
    if (cache != null) {
      NDArray[] kv = cache.append(layer, kt, v); // the cache owns the full arrays (and kt, v)
      kt = kv[0];
      v = kv[1];
    }
    long tk = kt.getShape().get(2);
    // Grouped-query attention without copying K/V per head: head h = g * rep + r uses kv head g, so the rep
    // query heads of a group are stacked along the time axis and share one matmul with their kv head.
    NDArray qt = closing(q.transpose(0, 2, 1, 3), q);
    NDArray qg = closing(qt.reshape(b, nKv, (long) rep * t, d), qt);
    NDArray kT = kt.transpose(0, 1, 3, 2);
    NDArray raw = closing(qg.matMul(kT), qg, kT); // (B, nKv, rep*T, Tk)
    NDArray scores = closing(raw.reshape(b, nH, t, tk), raw);
    NDArray biased = closing(scores.add(bias), scores); // (B, nH, T, Tk)
    NDArray probs = closing(biased.softmax(-1), biased);
    NDArray pg = closing(probs.reshape(b, nKv, (long) rep * t, tk), probs);
    NDArray ctx = closing(pg.matMul(v), pg); // (B, nKv, rep*T, D)
    if (cache == null) {
      kt.close();
      v.close();
    }
    NDArray ctxH = closing(ctx.reshape(b, nH, t, d), ctx);
    NDArray ctxT = closing(ctxH.transpose(0, 2, 1, 3), ctxH);
    NDArray attn = closing(ctxT.reshape(b, t, (long) nH * d), ctxT); // (B, T, nH*D)
    NDArray o = closing(Linear.linear(attn, w.o()).singletonOrThrow(), attn);
    NDArray x1 = closing(x.add(o), o);

    // gate and up stay two matmuls: one stacked matmul, split into views, measured no faster for the update here
    // (unlike q/k/v, whose views are copied for attention anyway)
    NDArray h2 = rmsNorm(x1, w.postNorm());
    NDArray gate = Linear.linear(h2, w.gate()).singletonOrThrow();
    NDArray up = closing(Linear.linear(h2, w.up()).singletonOrThrow(), h2);
    NDArray sig = Activation.sigmoid(gate);
    NDArray silu = closing(gate.mul(sig), gate, sig); // SwiGLU: silu(gate) * up
    NDArray act = closing(silu.mul(up), silu, up);
    NDArray down = closing(Linear.linear(act, w.down()).singletonOrThrow(), act);
    NDArray out = closing(x1.add(down), down);
    x1.close();
    return out;
  }

  /** x W^T + b against weights (and biases, or null) stacked along the output axis: one small concat, one matmul. */
  private static NDArray stackedLinear(NDArray x, NDArray[] weights, NDArray[] biases) {
    NDArray w = NDArrays.concat(new NDList(weights), 0);
    NDArray bias = biases == null ? null : NDArrays.concat(new NDList(biases), 0);
    NDArray out = Linear.linear(x, w, bias).singletonOrThrow();
    w.close();
    if (bias != null) {
      bias.close();
    }
    return out;
  }

  /** (B, T, heads*D) -> (B, T, heads, D), closing the flat handle. */
  private static NDArray heads(NDArray flat, long b, long t, int heads, int d) {
    return closing(flat.reshape(b, t, heads, d), flat);
  }

  /** Returns {@code result} after closing the handles of intermediates it was computed from. */
  private static NDArray closing(NDArray result, NDArray... used) {
    for (NDArray u : used) {
      u.close();
    }
    return result;
  }

  /** x * rsqrt(mean(x^2) + eps) * weight, as transformers' Qwen2RMSNorm / LlamaRMSNorm. */
  private NDArray rmsNorm(NDArray x, NDArray weight) {
    NDArray sq = x.square();
    NDArray var = closing(sq.mean(LAST_AXIS, true), sq);
    NDArray shifted = closing(var.add(eps), var);
    NDArray inv = closing(shifted.pow(minusHalf), shifted);
    NDArray normed = closing(x.mul(inv), inv);
    return closing(normed.mul(weight), normed);
  }

  /** x * cos + rotate_half(x) * sin on (B, T, heads, D) with (B, T, 1, D) tables. */
  private NDArray applyRope(NDArray x, NDArray cos, NDArray sin) {
    NDArray rotated = x.matMul(rotateHalf);
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
