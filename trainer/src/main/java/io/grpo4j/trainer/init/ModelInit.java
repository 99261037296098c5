package io.grpo4j.trainer.init;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpo4j.trainer.model.ModelConfig;
import io.grpo4j.trainer.model.ParameterLayout;
import io.grpo4j.trainer.model.SafeTensors;
import io.grpo4j.trainer.model.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A randomly initialised decoder written as transformers would write it: config.json in the transformers 4 layout
 * (top-level rope_theta, read by every version), generation_config.json and model.safetensors. Weights follow
 * transformers' _init_weights: normal(0, initializer_range) for projections and embeddings, zero biases, unit norms.
 */
public final class ModelInit {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ModelInit() {}

  /** Shape options; {@code headDim} 0 = hidden / heads. */
  public record Shape(String arch, int vocab, int hidden, int layers, int heads, int kvHeads, int intermediate,
      int headDim, int maxPositions, boolean tie, double ropeTheta) {}

  public static ObjectNode config(Shape s) {
    ObjectNode c = JSON.createObjectNode();
    String hf = switch (s.arch()) {
      case "qwen2" -> "Qwen2ForCausalLM";
      case "llama" -> "LlamaForCausalLM";
      case "qwen3" -> "Qwen3ForCausalLM";
      default -> throw new IllegalArgumentException("--arch \"" + s.arch() + "\" is not qwen2 | llama | qwen3");
    };
    c.putArray("architectures").add(hf);
    c.put("model_type", s.arch());
    c.put("vocab_size", s.vocab());
    c.put("hidden_size", s.hidden());
    c.put("intermediate_size", s.intermediate());
    c.put("num_hidden_layers", s.layers());
    c.put("num_attention_heads", s.heads());
    c.put("num_key_value_heads", s.kvHeads());
    if (s.headDim() > 0 || !s.arch().equals("qwen2")) {
      c.put("head_dim", s.headDim() > 0 ? s.headDim() : s.hidden() / s.heads());
    }
    c.put("hidden_act", "silu");
    c.put("max_position_embeddings", s.maxPositions());
    c.put("initializer_range", 0.02);
    c.put("rms_norm_eps", 1e-6);
    c.put("rope_theta", s.ropeTheta());
    c.put("tie_word_embeddings", s.tie());
    c.put("attention_dropout", 0.0);
    if (!s.arch().equals("qwen2")) {
      c.put("attention_bias", false);
    }
    if (s.arch().equals("llama")) {
      c.put("mlp_bias", false);
      c.put("pretraining_tp", 1);
    } else {
      c.put("use_sliding_window", false);
      c.putNull("sliding_window");
      c.put("max_window_layers", s.layers());
    }
    c.putNull("bos_token_id");
    c.put("eos_token_id", 2);
    c.put("pad_token_id", 0);
    c.put("torch_dtype", "float32");
    c.put("use_cache", true);
    return c;
  }

  public static void write(Path dir, Shape s, long seed) throws IOException {
    ObjectNode cfg = config(s);
    ModelConfig mc = ModelConfig.parse(cfg, dir.resolve("config.json"));
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    SplittableRandom rnd = new SplittableRandom(seed);
    for (var e : ParameterLayout.of(mc).entrySet()) {
      String name = e.getKey();
      long[] shape = e.getValue();
      float[] v = new float[Math.toIntExact(Tensor.numel(shape))];
      if (name.endsWith("norm.weight")) {
        java.util.Arrays.fill(v, 1f);
      } else if (!name.endsWith(".bias")) {
        for (int i = 0; i < v.length; i++) {
          v[i] = (float) (gaussian(rnd) * 0.02);
        }
      }
      tensors.put(name, Tensor.fromFloats(v, shape, "F32"));
    }
    SafeTensors.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
    SafeTensors.writeJson(dir.resolve("config.json"), cfg);
    ObjectNode gen = JSON.createObjectNode();
    gen.put("eos_token_id", 2);
    gen.put("pad_token_id", 0);
    gen.putNull("bos_token_id");
    SafeTensors.writeJson(dir.resolve("generation_config.json"), gen);
  }

  private static double gaussian(SplittableRandom r) {
    // Box-Muller: SplittableRandom has no nextGaussian on Java 17
    double u = 1.0 - r.nextDouble();
    double v = r.nextDouble();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}
