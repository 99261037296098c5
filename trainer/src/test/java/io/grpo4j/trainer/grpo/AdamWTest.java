package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The flat-vector AdamW against torch.optim.AdamW's update written out in doubles, with clipping, weight decay
 * (skipped for biases and norms, as the Hugging Face Trainer does) and a moments round trip.
 */
class AdamWTest {
  static final double B1 = 0.9;
  static final double B2 = 0.999;
  static final double EPS = 1e-8;
  static final double WD = 0.1;
  static final double LR = 0.01;

  // parameter name -> initial values; gradients below are d(sum(p * c))/dp = c, with c changing per step
  static final Map<String, double[]> INIT = new LinkedHashMap<>();

  static {
    INIT.put("model.layers.0.mlp.up_proj.weight", new double[] {0.5, -1.0, 2.0, 0.25, -0.75, 1.5});
    INIT.put("model.layers.0.self_attn.q_proj.bias", new double[] {0.1, -0.2, 0.3});
    INIT.put("model.norm.weight", new double[] {1.0, 0.9});
  }

  static double coeff(int step, int param, int i) {
    return Math.sin(1.7 * step + 2.3 * param + 0.9 * i) * (param + 1);
  }

  @Test
  void matchesTorchAdamWWithClippingAndDecayExclusions() {
    int steps = 4;
    double maxNorm = 1.0;
    // reference: torch.optim.AdamW.step (single-tensor path) after clip_grad_norm_(max_norm)
    Map<String, double[]> p = new LinkedHashMap<>();
    Map<String, double[]> m = new LinkedHashMap<>();
    Map<String, double[]> v = new LinkedHashMap<>();
    INIT.forEach((k, x) -> {
      p.put(k, x.clone());
      m.put(k, new double[x.length]);
      v.put(k, new double[x.length]);
    });
    List<String> names = List.copyOf(INIT.keySet());
    double[] norms = new double[steps];
    for (int s = 1; s <= steps; s++) {
      double sq = 0;
      for (int j = 0; j < names.size(); j++) {
        for (int i = 0; i < INIT.get(names.get(j)).length; i++) {
          sq += coeff(s, j, i) * coeff(s, j, i);
        }
      }
      double norm = Math.sqrt(sq);
      norms[s - 1] = norm;
      double clip = norm > maxNorm ? maxNorm / (norm + 1e-6) : 1.0;
      for (int j = 0; j < names.size(); j++) {
        String n = names.get(j);
        boolean decay = !n.endsWith("bias") && !n.contains("norm");
        for (int i = 0; i < p.get(n).length; i++) {
          double g = coeff(s, j, i) * clip;
          if (decay) {
            p.get(n)[i] *= 1 - LR * WD;
          }
          m.get(n)[i] = B1 * m.get(n)[i] + (1 - B1) * g;
          v.get(n)[i] = B2 * v.get(n)[i] + (1 - B2) * g * g;
          double denom = Math.sqrt(v.get(n)[i]) / Math.sqrt(1 - Math.pow(B2, s)) + EPS;
          p.get(n)[i] -= LR / (1 - Math.pow(B1, s)) * m.get(n)[i] / denom;
        }
      }
    }

    try (NDManager root = NDManager.newBaseManager()) {
      Map<String, NDArray> params = new LinkedHashMap<>();
      INIT.forEach((k, x) -> {
        NDArray a = root.create(toFloats(x), new Shape(x.length));
        a.setRequiresGradient(true);
        params.put(k, a);
      });
      AdamW opt = new AdamW(params, root.newSubManager(), B1, B2, EPS, WD);
      for (int s = 1; s <= steps; s++) {
        try (NDManager step = root.newSubManager(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          NDArray loss = null;
          for (int j = 0; j < names.size(); j++) {
            int n = INIT.get(names.get(j)).length;
            double[] c = new double[n];
            for (int i = 0; i < n; i++) {
              c[i] = coeff(s, j, i);
            }
            NDArray term = params.get(names.get(j)).mul(step.create(toFloats(c))).sum();
            loss = loss == null ? term : loss.add(term);
          }
          gc.backward(loss);
        }
        double norm = opt.gradNorm();
        assertEquals(norms[s - 1], norm, 1e-5 * norms[s - 1], "grad norm at step " + s);
        if (norm > maxNorm) {
          opt.scaleGradients(maxNorm / (norm + 1e-6));
        }
        opt.update(LR);
      }
      assertEquals(steps, opt.step());
      for (String n : names) {
        assertArrayEquals(toFloats(p.get(n)), params.get(n).toFloatArray(), 2e-6f, n);
        assertArrayEquals(toFloats(m.get(n)), opt.firstMoments().get(n), 1e-6f, "exp_avg." + n);
        assertArrayEquals(toFloats(v.get(n)), opt.secondMoments().get(n), 1e-7f, "exp_avg_sq." + n);
      }

      // moments survive a round trip (what resume does), and a wrong size is refused by name
      Map<String, float[]> first = opt.firstMoments();
      Map<String, float[]> second = opt.secondMoments();
      AdamW restored = new AdamW(params, root.newSubManager(), B1, B2, EPS, WD);
      restored.restoreMoments(first, second);
      for (String n : names) {
        assertArrayEquals(first.get(n), restored.firstMoments().get(n), n);
        assertArrayEquals(second.get(n), restored.secondMoments().get(n), n);
      }
      Map<String, float[]> bad = new LinkedHashMap<>(first);
      bad.put("model.norm.weight", new float[3]);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> restored.restoreMoments(bad, second));
      assertTrue(e.getMessage().contains("exp_avg.model.norm.weight"), e.getMessage());
    }
  }

  @Test
  void decaySetMatchesTheHuggingFaceTrainer() {
    // transformers' Trainer.get_decay_parameter_names on tiny-qwen2 / tiny-qwen3 names
    for (String n : List.of("model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.self_attn.q_norm.weight", "model.layers.1.self_attn.k_norm.weight", "model.norm.weight",
        "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.v_proj.bias")) {
      assertFalse(AdamW.decays(n), n);
    }
    for (String n : List.of("model.embed_tokens.weight", "lm_head.weight", "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.o_proj.weight", "model.layers.1.mlp.gate_proj.weight",
        "model.layers.1.mlp.down_proj.weight")) {
      assertTrue(AdamW.decays(n), n);
    }
  }

  static float[] toFloats(double[] x) {
    float[] f = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      f[i] = (float) x[i];
    }
    return f;
  }
}
