package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.SafeTensors;
import io.grpo4j.trainer.model.Tensor;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * grpo-golden.*: the loss and four parameter gradients of tiny-qwen2 for every loss type and beta, from the same
 * inputs as TRL 1.13 (use_bias_correction_kl=False). Every expected value and setting is read from the fixture.
 */
class GrpoGoldenTest {
  @Test
  void lossAndGradientsMatchTheGoldenCase() throws Exception {
    Map<String, Tensor> g = SafeTensors.read(Fixtures.root().resolve("grpo-golden.safetensors"));
    JsonNode meta = new ObjectMapper().readTree(Fixtures.root().resolve("grpo-golden.json").toFile());
    long[] ids = g.get("input_ids").toLongs();
    long[] mask = g.get("attention_mask").toLongs();
    long[] cmask = g.get("completion_mask").toLongs();
    int rows = (int) g.get("input_ids").shape()[0];
    int total = (int) g.get("input_ids").shape()[1];
    int c = (int) g.get("completion_mask").shape()[1];
    int p = (int) g.get("prompt_length").toLongs()[0];
    assertEquals(total, p + c);
    CompletionBatch batch = new CompletionBatch(ids, mask, cmask, rows, p, c);
    double temperature = meta.get("temperature").asDouble();
    int cases = 0;
    try (NDManager root = NDManager.newBaseManager();
        CausalLM model = HfCheckpoint.load(Fixtures.model("tiny-qwen2"), root.newSubManager())) {
      model.setTrainable(true);
      for (JsonNode cs : meta.get("cases")) {
        String type = cs.get("loss_type").asText();
        double beta = cs.get("beta").asDouble();
        String prefix = type + "_beta" + (beta == 0 ? "0.0" : String.valueOf(beta));
        GrpoLoss.Settings s = new GrpoLoss.Settings(type, beta, meta.get("epsilon_low").asDouble(),
            meta.get("epsilon_high").asDouble(), "token", meta.get("max_completion_length").asInt(), false);
        try (NDManager step = root.newSubManager()) {
          NDArray adv = step.create(g.get("advantages").toFloats());
          NDArray old = step.create(g.get("old_logps").toFloats(), new Shape(rows, c));
          NDArray ref = step.create(g.get("ref_logps").toFloats(), new Shape(rows, c));
          float[] logps;
          float loss;
          try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            PolicyLogProbs.Result lp = PolicyLogProbs.compute(model, step, batch, temperature, false);
            GrpoLoss.Output out = GrpoLoss.compute(lp.logps(), old, ref, adv, batch.completionMask(step), s,
                batch.completionTokens());
            gc.backward(out.loss());
            logps = lp.logps().toFloatArray();
            loss = out.loss().getFloat();
          }
          assertEquals(g.get(prefix + ".loss").toFloats()[0], loss, 1e-5, prefix + " loss");
          float[] wantLogps = g.get(prefix + ".policy_logps").toFloats();
          for (int i = 0; i < logps.length; i++) {
            if (cmask[i] == 1) {
              assertEquals(wantLogps[i], logps[i], 1e-4, prefix + " policy_logps[" + i + "]");
            }
          }
          int grads = 0;
          for (String key : g.keySet()) {
            if (!key.startsWith(prefix + ".grad.")) {
              continue;
            }
            String name = key.substring((prefix + ".grad.").length());
            float[] want = g.get(key).toFloats();
            float[] got;
            try (NDArray gr = model.parameters().get(name).getGradient()) {
              got = gr.toFloatArray();
            }
            double max = 0;
            double worst = 0;
            for (int i = 0; i < want.length; i++) {
              max = Math.max(max, Math.abs(want[i]));
              worst = Math.max(worst, Math.abs(want[i] - got[i]));
            }
            assertTrue(worst <= 1e-4 * max, prefix + " grad " + name + ": max diff " + worst + " vs max " + max);
            grads++;
          }
          assertEquals(4, grads, prefix + " has four gradients");
          model.parameters().values().forEach(x -> ai.djl.pytorch.jni.JniUtils.zeroGrad(
              (ai.djl.pytorch.engine.PtNDArray) x));
        }
        cases++;
      }
    }
    assertEquals(6, cases);
  }
}
