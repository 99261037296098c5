package io.grpo4j.trainer.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * The shape of a Hugging Face decoder, read from its {@code config.json}. Field names keep the meaning of the
 * {@code config.json} keys; the original JSON is kept too, so that a saved checkpoint writes back every key a user
 * (or transformers) put there, including ones grpo4j does not interpret.
 */
public record ModelConfig(
    Architecture architecture,
    int vocabSize,
    int hiddenSize,
    int intermediateSize,
    int numHiddenLayers,
    int numAttentionHeads,
    int numKeyValueHeads,
    int headDim,
    double rmsNormEps,
    boolean attentionBias,
    boolean tieWordEmbeddings,
    RopeScaling rope,
    int maxPositionEmbeddings,
    String torchDtype,
    List<Integer> eosTokenIds,
    Integer padTokenId,
    ObjectNode raw) {

  /** The decoder families grpo4j implements, keyed by the {@code architectures[0]} string of config.json. */
  public enum Architecture {
    LLAMA("LlamaForCausalLM", "llama"),
    QWEN2("Qwen2ForCausalLM", "qwen2"),
    QWEN3("Qwen3ForCausalLM", "qwen3");

    public final String hfName;
    public final String modelType;

    Architecture(String hfName, String modelType) {
      this.hfName = hfName;
      this.modelType = modelType;
    }

    static Architecture of(String hfName, Path file) {
      for (Architecture a : values()) {
        if (a.hfName.equals(hfName)) {
          return a;
        }
      }
      throw new ModelFormatException(
          file + ": architectures[0] = \"" + hfName + "\" is not supported; grpo4j implements "
              + List.of(LLAMA.hfName, QWEN2.hfName, QWEN3.hfName));
    }

    /** Qwen3 normalises each head's queries and keys (q_norm / k_norm) before RoPE. */
    public boolean hasQkNorm() {
      return this == QWEN3;
    }
  }

  /**
   * RoPE settings. {@code type} is "default" or "llama3"; the llama3 fields are only meaningful for that type.
   */
  public record RopeScaling(
      double theta,
      String type,
      double factor,
      double lowFreqFactor,
      double highFreqFactor,
      int originalMaxPositionEmbeddings) {}

  public int kvGroups() {
    return numAttentionHeads / numKeyValueHeads;
  }

  public int eosTokenId() {
    return eosTokenIds.isEmpty() ? -1 : eosTokenIds.get(0);
  }

  public static ModelConfig load(Path dir) throws IOException {
    Path file = dir.resolve("config.json");
    if (!Files.isRegularFile(file)) {
      throw new ModelFormatException(file + ": missing; a Hugging Face model folder needs config.json");
    }
    JsonNode node;
    try {
      node = new ObjectMapper().readTree(file.toFile());
    } catch (IOException e) {
      throw new ModelFormatException(file + ": not valid JSON: " + e.getMessage());
    }
    if (!(node instanceof ObjectNode obj)) {
      throw new ModelFormatException(file + ": expected a JSON object");
    }
    return parse(obj, file);
  }

  /** Keys whose non-default values change the math in ways grpo4j does not implement: refuse them loudly. */
  private static final Set<String> SUPPORTED_ACT = Set.of("silu", "swish");

  public static ModelConfig parse(ObjectNode c, Path file) {
    JsonNode archs = c.get("architectures");
    if (archs == null || !archs.isArray() || archs.isEmpty()) {
      throw new ModelFormatException(file + ": key \"architectures\" is missing or empty");
    }
    Architecture arch = Architecture.of(archs.get(0).asText(), file);
    int hidden = requireInt(c, "hidden_size", file);
    int heads = requireInt(c, "num_attention_heads", file);
    int kvHeads = c.has("num_key_value_heads") && !c.get("num_key_value_heads").isNull()
        ? c.get("num_key_value_heads").asInt() : heads;
    if (heads % kvHeads != 0) {
      throw new ModelFormatException(file + ": num_attention_heads (" + heads
          + ") must be a multiple of num_key_value_heads (" + kvHeads + ")");
    }
    int headDim = c.has("head_dim") && !c.get("head_dim").isNull() ? c.get("head_dim").asInt() : hidden / heads;
    String act = c.path("hidden_act").asText("silu");
    if (!SUPPORTED_ACT.contains(act)) {
      throw new ModelFormatException(file + ": hidden_act = \"" + act + "\" is not supported (only silu)");
    }
    if (c.path("use_sliding_window").asBoolean(false)) {
      throw new ModelFormatException(file + ": use_sliding_window = true is not supported");
    }
    if (c.path("mlp_bias").asBoolean(false)) {
      throw new ModelFormatException(file + ": mlp_bias = true is not supported");
    }
    if (c.path("pretraining_tp").asInt(1) != 1) {
      throw new ModelFormatException(file + ": pretraining_tp != 1 is not supported");
    }
    // Qwen2 always has q/k/v bias (no config key); Llama and Qwen3 say so with attention_bias.
    boolean attnBias = arch == Architecture.QWEN2 || c.path("attention_bias").asBoolean(false);
    boolean tied = c.path("tie_word_embeddings").asBoolean(arch != Architecture.LLAMA);
    RopeScaling rope = parseRope(c, file);
    List<Integer> eos = new java.util.ArrayList<>();
    JsonNode e = c.get("eos_token_id");
    if (e != null && e.isArray()) {
      e.forEach(x -> eos.add(x.asInt()));
    } else if (e != null && e.isNumber()) {
      eos.add(e.asInt());
    }
    JsonNode pad = c.get("pad_token_id");
    String dtype = c.has("dtype") ? c.get("dtype").asText() : c.path("torch_dtype").asText("float32");
    return new ModelConfig(
        arch,
        requireInt(c, "vocab_size", file),
        hidden,
        requireInt(c, "intermediate_size", file),
        requireInt(c, "num_hidden_layers", file),
        heads,
        kvHeads,
        headDim,
        c.path("rms_norm_eps").asDouble(1e-6),
        attnBias,
        tied,
        rope,
        c.path("max_position_embeddings").asInt(4096),
        dtype,
        List.copyOf(eos),
        pad == null || pad.isNull() ? null : pad.asInt(),
        c.deepCopy());
  }

  /**
   * transformers 4 writes {@code rope_theta} (and {@code rope_scaling}) at the top level; transformers 5 writes
   * {@code rope_parameters: {rope_theta, rope_type, ...}}. Both describe the same thing.
   */
  private static RopeScaling parseRope(ObjectNode c, Path file) {
    JsonNode params = c.get("rope_parameters");
    JsonNode scaling = c.get("rope_scaling");
    double theta;
    JsonNode typed;
    if (params != null && params.isObject()) {
      theta = params.path("rope_theta").asDouble(c.path("rope_theta").asDouble(10000.0));
      typed = params;
    } else {
      theta = c.path("rope_theta").asDouble(10000.0);
      typed = scaling != null && scaling.isObject() ? scaling : null;
    }
    String type = "default";
    if (typed != null) {
      type = typed.has("rope_type") ? typed.get("rope_type").asText() : typed.path("type").asText("default");
    }
    return switch (type) {
      case "default" -> new RopeScaling(theta, "default", 1, 1, 1, 0);
      case "llama3" -> new RopeScaling(
          theta,
          "llama3",
          requireDouble(typed, "factor", file, "rope scaling"),
          requireDouble(typed, "low_freq_factor", file, "rope scaling"),
          requireDouble(typed, "high_freq_factor", file, "rope scaling"),
          (int) requireDouble(typed, "original_max_position_embeddings", file, "rope scaling"));
      default -> throw new ModelFormatException(
          file + ": rope type \"" + type + "\" is not supported (supported: default, llama3)");
    };
  }

  private static int requireInt(JsonNode c, String key, Path file) {
    JsonNode v = c.get(key);
    if (v == null || !v.isIntegralNumber()) {
      throw new ModelFormatException(file + ": key \"" + key + "\" must be an integer, found " + v);
    }
    return v.asInt();
  }

  private static double requireDouble(JsonNode c, String key, Path file, String where) {
    JsonNode v = c.get(key);
    if (v == null || !v.isNumber()) {
      throw new ModelFormatException(file + ": " + where + " key \"" + key + "\" must be a number, found " + v);
    }
    return v.asDouble();
  }
}
