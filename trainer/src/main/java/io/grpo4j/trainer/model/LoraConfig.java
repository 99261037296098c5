package io.grpo4j.trainer.model;

import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LoRA adapters (Hu et al. 2021) as PEFT's {@code LoraConfig} names and defaults them: each targeted projection
 * computes {@code W x + (alpha / r) B A dropout(x)}, with A (r, in) Kaiming-uniform and B (out, r) zero at the start,
 * so the adapted model starts as the base. {@code use_rslora} scales by {@code alpha / sqrt(r)} instead.
 *
 * @param targetModules projection names among q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj
 */
public record LoraConfig(int r, double alpha, double dropout, List<String> targetModules, boolean useRslora) {
  /** Every linear layer of a decoder block PEFT's "all-linear" covers (it leaves out the LM head). */
  public static final List<String> ALL_LINEAR =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

  public LoraConfig {
    if (r < 1) {
      throw new IllegalArgumentException("lora.r must be >= 1, got " + r);
    }
    targetModules = List.copyOf(targetModules);
  }

  /** The factor on B A x. */
  public double scaling() {
    return useRslora ? alpha / Math.sqrt(r) : alpha / r;
  }

  public boolean targets(String module) {
    return targetModules.contains(module);
  }

  /**
   * {@code lora:} of a config, or null when absent. PEFT's defaults: r 8, lora_alpha 8, lora_dropout 0, and for
   * Llama / Qwen models target_modules [q_proj, v_proj]; "all-linear" means every projection of the blocks.
   */
  public static LoraConfig parse(ConfigMap parent) {
    if (!parent.has("lora") || parent.raw("lora") == null) {
      return null;
    }
    ConfigMap c = parent.map("lora");
    int r = c.integer("r", 8, 1, 1 << 16);
    // PEFT's names (lora_alpha, lora_dropout) or the short ones, not both
    for (String k : List.of("alpha", "dropout")) {
      if (c.has(k) && c.has("lora_" + k)) {
        throw new ConfigException(c.key(k) + " and " + c.key("lora_" + k) + " are the same setting; give one");
      }
    }
    double alpha = c.number(c.has("lora_alpha") ? "lora_alpha" : "alpha", 8, 0, 1e9);
    double dropout = c.number(c.has("lora_dropout") ? "lora_dropout" : "dropout", 0.0, 0, 0.999);
    List<String> targets = targets(c);
    boolean rslora = c.bool("use_rslora", false);
    String bias = c.string("bias", "none");
    if (!bias.equals("none")) {
      throw new ConfigException(c.key("bias") + ": only \"none\" is supported (biases stay frozen), got " + bias);
    }
    c.finish();
    return new LoraConfig(r, alpha, dropout, targets, rslora);
  }

  private static List<String> targets(ConfigMap c) {
    Object raw = c.raw("target_modules");
    if (raw == null) {
      return List.of("q_proj", "v_proj");
    }
    List<String> names = new ArrayList<>();
    if (raw instanceof String s) {
      if (s.equals("all-linear")) {
        return ALL_LINEAR;
      }
      names.add(s);
    } else if (raw instanceof List<?> l) {
      l.forEach(x -> names.add(String.valueOf(x)));
    } else {
      throw new ConfigException(c.key("target_modules") + ": expected \"all-linear\" or a list of projection names");
    }
    List<String> out = new ArrayList<>();
    for (String n : names) {
      String m = n.contains(".") ? n.substring(n.lastIndexOf('.') + 1) : n; // self_attn.q_proj -> q_proj
      if (!ALL_LINEAR.contains(m)) {
        throw new ConfigException(c.key("target_modules") + ": \"" + n + "\" is not a projection of this model's"
            + " blocks; use names among " + ALL_LINEAR + " or \"all-linear\"");
      }
      if (!out.contains(m)) {
        out.add(m);
      }
    }
    if (out.isEmpty()) {
      throw new ConfigException(c.key("target_modules") + ": the list is empty");
    }
    return out;
  }

  /** PEFT's adapter_config.json for these settings. */
  public Map<String, Object> peftConfig(String baseModel) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("alpha_pattern", Map.of());
    m.put("base_model_name_or_path", baseModel);
    m.put("bias", "none");
    m.put("fan_in_fan_out", false);
    m.put("inference_mode", true);
    m.put("init_lora_weights", true);
    m.put("layers_pattern", null);
    m.put("layers_to_transform", null);
    m.put("lora_alpha", alpha == Math.rint(alpha) ? (Object) (long) alpha : (Object) alpha);
    m.put("lora_dropout", dropout);
    m.put("modules_to_save", null);
    m.put("peft_type", "LORA");
    m.put("r", r);
    m.put("rank_pattern", Map.of());
    m.put("revision", null);
    m.put("target_modules", targetModules);
    m.put("task_type", "CAUSAL_LM");
    m.put("use_dora", false);
    m.put("use_rslora", useRslora);
    return m;
  }

  /** Reads PEFT's adapter_config.json (LoRA without per-layer patterns, DoRA or extra trained modules). */
  public static LoraConfig fromPeft(java.nio.file.Path dir) throws java.io.IOException {
    java.nio.file.Path f = dir.resolve("adapter_config.json");
    if (!java.nio.file.Files.isRegularFile(f)) {
      throw new ModelFormatException(f + ": missing; a PEFT adapter folder holds adapter_config.json and"
          + " adapter_model.safetensors");
    }
    var j = new com.fasterxml.jackson.databind.ObjectMapper().readTree(f.toFile());
    if (!"LORA".equals(j.path("peft_type").asText("LORA"))) {
      throw new ModelFormatException(f + ": peft_type " + j.path("peft_type").asText() + " is not LORA");
    }
    if (j.path("use_dora").asBoolean(false) || j.path("rank_pattern").size() > 0 || j.path("alpha_pattern").size() > 0
        || j.hasNonNull("modules_to_save") && j.get("modules_to_save").size() > 0
        || j.hasNonNull("layers_to_transform")) {
      throw new ModelFormatException(f + ": DoRA, rank/alpha patterns, modules_to_save and layers_to_transform are"
          + " not supported");
    }
    List<String> targets = new ArrayList<>();
    var t = j.get("target_modules");
    if (t != null && t.isTextual()) {
      if (t.asText().equals("all-linear")) {
        targets.addAll(ALL_LINEAR);
      } else {
        throw new ModelFormatException(f + ": target_modules \"" + t.asText() + "\" (a regular expression) is not"
            + " supported; list the projection names");
      }
    } else if (t != null) {
      t.forEach(x -> {
        String n = x.asText();
        targets.add(n.contains(".") ? n.substring(n.lastIndexOf('.') + 1) : n);
      });
    }
    for (String n : targets) {
      if (!ALL_LINEAR.contains(n)) {
        throw new ModelFormatException(f + ": target module \"" + n + "\" is not one of " + ALL_LINEAR);
      }
    }
    return new LoraConfig(j.path("r").asInt(8), j.path("lora_alpha").asDouble(8), j.path("lora_dropout").asDouble(0),
        targets, j.path("use_rslora").asBoolean(false));
  }
}
