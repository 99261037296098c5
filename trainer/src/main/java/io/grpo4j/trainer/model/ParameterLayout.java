package io.grpo4j.trainer.model;

import java.util.LinkedHashMap;
import java.util.Map;

/** The Hugging Face parameter names and shapes a {@link ModelConfig} implies, in checkpoint order. */
public final class ParameterLayout {
  private ParameterLayout() {}

  public static Map<String, long[]> of(ModelConfig c) {
    Map<String, long[]> p = new LinkedHashMap<>();
    long h = c.hiddenSize();
    long qDim = (long) c.numAttentionHeads() * c.headDim();
    long kvDim = (long) c.numKeyValueHeads() * c.headDim();
    p.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      String l = "model.layers." + i + ".";
      p.put(l + "input_layernorm.weight", new long[] {h});
      p.put(l + "self_attn.q_proj.weight", new long[] {qDim, h});
      p.put(l + "self_attn.k_proj.weight", new long[] {kvDim, h});
      p.put(l + "self_attn.v_proj.weight", new long[] {kvDim, h});
      if (c.attentionBias()) {
        p.put(l + "self_attn.q_proj.bias", new long[] {qDim});
        p.put(l + "self_attn.k_proj.bias", new long[] {kvDim});
        p.put(l + "self_attn.v_proj.bias", new long[] {kvDim});
      }
      p.put(l + "self_attn.o_proj.weight", new long[] {h, qDim});
      if (c.architecture().hasQkNorm()) {
        p.put(l + "self_attn.q_norm.weight", new long[] {c.headDim()});
        p.put(l + "self_attn.k_norm.weight", new long[] {c.headDim()});
      }
      p.put(l + "post_attention_layernorm.weight", new long[] {h});
      p.put(l + "mlp.gate_proj.weight", new long[] {c.intermediateSize(), h});
      p.put(l + "mlp.up_proj.weight", new long[] {c.intermediateSize(), h});
      p.put(l + "mlp.down_proj.weight", new long[] {h, c.intermediateSize()});
    }
    p.put("model.norm.weight", new long[] {h});
    if (!c.tieWordEmbeddings()) {
      p.put("lm_head.weight", new long[] {c.vocabSize(), h});
    }
    return p;
  }

  /** Tensors some writers store that carry no information grpo4j needs (recomputed or tied). */
  public static boolean ignorable(String name, ModelConfig c) {
    return name.endsWith("rotary_emb.inv_freq") || (c.tieWordEmbeddings() && name.equals("lm_head.weight"));
  }
}
