package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.LoraAdapters;
import io.grpo4j.trainer.model.LoraConfig;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Gradient checkpointing changes memory, not math: the gradients of a padded batch's loss with every layer
 * recomputed in the backward pass equal those of the plain backward, for full fine-tuning and for LoRA, on each
 * fixture model.
 */
class GradientCheckpointingTest {
  static Map<String, float[]> gradients(CausalLM model, boolean checkpointing) {
    model.setGradientCheckpointing(checkpointing);
    long[][] prompts = {{5, 9, 2, 44}, {17, 3}, {8, 8, 8, 1, 2}};
    long[][] completions = {{7, 7, 12}, {100, 2, 3, 4}, {6}};
    CompletionBatch b = new CompletionBatch(prompts, completions, 0);
    Map<String, float[]> out = new LinkedHashMap<>();
    try (NDManager m = model.manager().newSubManager()) {
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        NDArray lp = PolicyLogProbs.compute(model, m, b, 0.7, false).logps();
        NDArray loss = lp.mul(b.completionMask(m)).sum().neg();
        gc.backward(loss);
        model.backwardCheckpoints();
      }
      model.trainableParameters().forEach((name, p) -> {
        out.put(name, p.getGradient().toFloatArray());
        p.getGradient().muli(0); // the next run starts from zero gradients
      });
    }
    return out;
  }

  static void assertSameGradients(Map<String, float[]> want, Map<String, float[]> got, String what) {
    assertEquals(want.keySet(), got.keySet());
    for (String name : want.keySet()) {
      float[] a = want.get(name);
      float[] b = got.get(name);
      double scale = 0;
      double diff = 0;
      for (int i = 0; i < a.length; i++) {
        scale = Math.max(scale, Math.abs(a[i]));
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
      }
      assertTrue(scale > 0, what + " " + name + ": no gradient at all");
      assertTrue(diff <= 1e-6 * scale + 1e-9, what + " " + name + ": gradients differ by " + diff + " (scale " + scale
          + ")");
    }
  }

  @Test
  void sameGradientsWithAndWithoutCheckpointing() throws Exception {
    for (String fixture : List.of("tiny-qwen2", "tiny-llama", "tiny-qwen3")) {
      try (NDManager root = NDManager.newBaseManager()) {
        CausalLM model = HfCheckpoint.load(Fixtures.model(fixture), root.newSubManager());
        model.setTrainable(true);
        assertSameGradients(gradients(model, false), gradients(model, true), fixture + " full");
        CausalLM lora = HfCheckpoint.load(Fixtures.model(fixture), root.newSubManager());
        LoraConfig c = LoraConfig.parse(new ConfigMap("", Map.of("lora", Map.of("r", 4, "lora_alpha", 8,
            "target_modules", "all-linear"))));
        LoraAdapters a = LoraAdapters.create(c, lora.config(), root.newSubManager(), 5);
        // B away from zero, so that A has a gradient too
        Map<String, float[]> values = new LinkedHashMap<>();
        java.util.SplittableRandom r = new java.util.SplittableRandom(1);
        a.parameters().forEach((n, p) -> {
          float[] v = new float[(int) p.size()];
          for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * 0.02);
          }
          values.put(n, v);
        });
        a.overwrite(values);
        lora.attachAdapters(a);
        assertSameGradients(gradients(lora, false), gradients(lora, true), fixture + " lora");
      }
    }
  }
}
