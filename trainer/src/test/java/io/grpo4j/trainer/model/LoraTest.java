package io.grpo4j.trainer.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.Fixtures;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LoRA on tiny-qwen2: one projection's delta and its gradients against a hand computation, the adapted model against
 * the merged one, the base view against the plain model, PEFT's folder format, and PEFT's config names.
 */
class LoraTest {
  static NDManager root;
  static Path dir;
  @TempDir static Path tmp;

  @BeforeAll
  static void load() throws Exception {
    root = NDManager.newBaseManager();
    dir = Fixtures.model("tiny-qwen2");
  }

  @AfterAll
  static void close() {
    root.close();
  }

  static LoraConfig config(String targets, int r, double alpha) {
    Map<String, Object> lora = new java.util.LinkedHashMap<>();
    lora.put("r", r);
    lora.put("lora_alpha", alpha);
    lora.put("target_modules", targets.equals("all-linear") ? targets : List.of(targets.split(",")));
    return LoraConfig.parse(new ConfigMap("", Map.of("lora", lora)));
  }

  /** Adapters with B random too (fresh ones have B = 0, which would hide mistakes). */
  static LoraAdapters randomAdapters(LoraConfig c, ModelConfig mc, NDManager m, long seed) {
    LoraAdapters a = LoraAdapters.create(c, mc, m, seed);
    SplittableRandom r = new SplittableRandom(seed);
    Map<String, float[]> values = new java.util.LinkedHashMap<>();
    a.parameters().forEach((name, p) -> {
      float[] v = new float[(int) p.size()];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) (r.nextGaussian() * 0.05);
      }
      values.put(name, v);
    });
    a.overwrite(values);
    return a;
  }

  static float[] logits(CausalLM m, long[] ids) {
    try (NoGrad g = NoGrad.enter(); NDManager s = root.newSubManager()) {
      NDArray x = s.create(ids).reshape(1, ids.length);
      NDArray pos = s.arange(0, ids.length, 1, DataType.INT64).reshape(1, ids.length);
      return m.forward(x, pos, null).toFloatArray();
    }
  }

  static void assertClose(float[] want, float[] got, double tol, String what) {
    assertEquals(want.length, got.length);
    double worst = 0;
    for (int i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(want[i] - got[i]));
    }
    assertTrue(worst <= tol, what + ": max difference " + worst + " > " + tol);
  }

  @Test
  void oneProjectionsDeltaAndGradientsMatchAHandComputation() throws Exception {
    ModelConfig mc = HfCheckpoint.load(dir, root.newSubManager()).config();
    LoraConfig c = config("q_proj", 4, 8); // scaling 2
    try (NDManager m = root.newSubManager()) {
      LoraAdapters a = randomAdapters(c, mc, m.newSubManager(), 3);
      int h = mc.hiddenSize();
      int out = mc.numAttentionHeads() * mc.headDim();
      int r = 4;
      float[] xv = new float[2 * 3 * h];
      SplittableRandom rnd = new SplittableRandom(9);
      for (int i = 0; i < xv.length; i++) {
        xv[i] = (float) rnd.nextGaussian();
      }
      NDArray x = m.create(xv, new Shape(2, 3, h));
      String base = "base_model.model.model.layers.0.self_attn.q_proj";
      float[] av = a.parameters().get(base + ".lora_A.weight").toFloatArray(); // (r, h)
      float[] bv = a.parameters().get(base + ".lora_B.weight").toFloatArray(); // (out, r)
      float[] gv = new float[2 * 3 * out];
      for (int i = 0; i < gv.length; i++) {
        gv[i] = (float) rnd.nextGaussian();
      }
      NDArray d;
      try (ai.djl.training.GradientCollector gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
        d = a.delta(0, 0, x);
        JniUtils.backward((PtNDArray) d, (PtNDArray) m.create(gv, d.getShape()), false, false);
      }
      // by hand: delta = 2 * B (A x); dB = 2 * g (A x)^T; dA = 2 * (B^T g) x^T, summed over the 6 positions
      float[] want = new float[2 * 3 * out];
      double[] dA = new double[r * h];
      double[] dB = new double[out * r];
      for (int p = 0; p < 6; p++) {
        double[] ax = new double[r];
        for (int k = 0; k < r; k++) {
          for (int j = 0; j < h; j++) {
            ax[k] += av[k * h + j] * xv[p * h + j];
          }
        }
        double[] btg = new double[r];
        for (int o = 0; o < out; o++) {
          double y = 0;
          for (int k = 0; k < r; k++) {
            y += bv[o * r + k] * ax[k];
            dB[o * r + k] += 2 * gv[p * out + o] * ax[k];
            btg[k] += bv[o * r + k] * gv[p * out + o];
          }
          want[p * out + o] = (float) (2 * y);
        }
        for (int k = 0; k < r; k++) {
          for (int j = 0; j < h; j++) {
            dA[k * h + j] += 2 * btg[k] * xv[p * h + j];
          }
        }
      }
      assertClose(want, d.toFloatArray(), 1e-4, "delta");
      assertClose(toFloat(dA), a.parameters().get(base + ".lora_A.weight").getGradient().toFloatArray(), 1e-3, "dA");
      assertClose(toFloat(dB), a.parameters().get(base + ".lora_B.weight").getGradient().toFloatArray(), 1e-3, "dB");
    }
  }

  static float[] toFloat(double[] d) {
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) {
      f[i] = (float) d[i];
    }
    return f;
  }

  @Test
  void theAdaptedModelEqualsTheMergedOneAndItsBaseViewTheBase() throws Exception {
    long[] ids = {5, 9, 2, 44, 17, 3, 8};
    CausalLM plain = HfCheckpoint.load(dir, root.newSubManager());
    float[] base = logits(plain, ids);
    CausalLM adapted = HfCheckpoint.load(dir, root.newSubManager());
    LoraAdapters fresh = LoraAdapters.create(config("all-linear", 8, 16), adapted.config(), root.newSubManager(), 1);
    adapted.attachAdapters(fresh);
    assertArrayEquals(base, logits(adapted, ids), "B = 0 at the start: the adapted model is the base");
    adapted.attachAdapters(randomAdapters(config("all-linear", 8, 16), adapted.config(), root.newSubManager(), 2));
    float[] withLora = logits(adapted, ids);
    double moved = 0;
    for (int i = 0; i < base.length; i++) {
      moved = Math.max(moved, Math.abs(base[i] - withLora[i]));
    }
    assertTrue(moved > 1e-3, "the adapters change the logits");
    try (CausalLM view = adapted.baseView()) {
      assertArrayEquals(base, logits(view, ids), "adapters off: exactly the base");
    }
    CausalLM merged = HfCheckpoint.load(dir, root.newSubManager());
    merged.overwriteWeights(adapted.adapters().merged(adapted.parameters()));
    assertClose(withLora, logits(merged, ids), 1e-5, "merged vs adapted");
    // PEFT folder round trip: the same adapters, and an HF folder opened through it applies them
    Path peft = tmp.resolve("peft");
    adapted.adapters().savePeft(peft, dir.toAbsolutePath().toString());
    HfCheckpoint through = HfCheckpoint.open(peft);
    assertEquals(peft, through.adapter());
    try (CausalLM again = through.loadModel(root.newSubManager())) {
      assertArrayEquals(withLora, logits(again, ids));
    }
    // only the adapters train
    assertEquals(adapted.adapters().parameters(), adapted.trainableParameters());
    assertTrue(adapted.parameters().values().stream().noneMatch(NDArray::hasGradient));
  }

  @Test
  void peftNamesDefaultsAndBadConfigs() {
    LoraConfig d = LoraConfig.parse(new ConfigMap("", Map.of("lora", Map.of())));
    assertEquals(new LoraConfig(8, 8, 0.0, List.of("q_proj", "v_proj"), false), d); // PEFT's defaults
    assertEquals(LoraConfig.ALL_LINEAR, config("all-linear", 8, 16).targetModules());
    assertEquals(2.0, config("q_proj", 8, 16).scaling());
    LoraConfig rs = LoraConfig.parse(new ConfigMap("", Map.of("lora", Map.of("r", 16, "alpha", 32, "use_rslora",
        true))));
    assertEquals(8.0, rs.scaling(), 1e-12); // alpha / sqrt(r)
    var e = assertThrows(ConfigException.class, () -> LoraConfig.parse(new ConfigMap("", Map.of("lora",
        Map.of("target_modules", List.of("q_proj", "lm_head"))))));
    assertTrue(e.getMessage().contains("lora.target_modules") && e.getMessage().contains("lm_head"), e.getMessage());
    e = assertThrows(ConfigException.class, () -> LoraConfig.parse(new ConfigMap("", Map.of("lora",
        Map.of("rank", 8)))));
    assertTrue(e.getMessage().contains("lora.rank"), e.getMessage());
    e = assertThrows(ConfigException.class, () -> LoraConfig.parse(new ConfigMap("", Map.of("lora",
        Map.of("bias", "all")))));
    assertTrue(e.getMessage().contains("lora.bias"), e.getMessage());
  }

  @Test
  void anAdapterForAnotherModelIsRefusedByName() throws Exception {
    CausalLM m = HfCheckpoint.load(dir, root.newSubManager());
    LoraAdapters a = LoraAdapters.create(config("q_proj,v_proj", 4, 8), m.config(), root.newSubManager(), 1);
    Path peft = tmp.resolve("other");
    a.savePeft(peft, dir.toAbsolutePath().toString());
    ModelConfig llama = HfCheckpoint.open(Fixtures.model("tiny-llama")).config();
    var e = assertThrows(ModelFormatException.class, () -> LoraAdapters.loadPeft(peft, llama, root.newSubManager()));
    assertTrue(e.getMessage().contains("adapter_model.safetensors"), e.getMessage());
  }
}
