package io.grpo4j.trainer.model;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.device.NativeTorch;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * libtorch's fused attention (what full forwards use on CUDA) against the golden logits of the left-padded batch,
 * and its gradients against the matmul attention's, on whatever device the tests run (it needs the native library
 * of scripts/setup-pytorch.sh; CI's bundled build skips this).
 */
class FusedAttentionTest {
  @ParameterizedTest
  @ValueSource(strings = {"tiny-qwen2", "tiny-llama", "tiny-qwen3"})
  void unpaddedBatchesRunCausalWithoutAMask(String name) throws Exception {
    assumeTrue(NativeTorch.available(), "needs the PyTorch set up by scripts/setup-pytorch.sh");
    Map<String, Tensor> exp = Fixtures.expected(name);
    Tensor want = exp.get("single_logits"); // (T, V), prompt 0 without padding
    int t = (int) want.shape()[0];
    long[] all = exp.get("batch_input_ids").toLongs();
    long[] mask = exp.get("batch_attention_mask").toLongs();
    int l = (int) exp.get("batch_input_ids").shape()[1];
    long[] ids = new long[t];
    for (int s = 0, k = 0; s < l; s++) {
      if (mask[s] == 1) {
        ids[k++] = all[s];
      }
    }
    long[] pos = new long[t];
    for (int s = 0; s < t; s++) {
      pos[s] = s;
    }
    for (boolean fused : new boolean[] {true, false}) {
      try (NDManager root = NDManager.newBaseManager();
          CausalLM model = HfCheckpoint.load(Fixtures.model(name), root.newSubManager());
          NDManager step = root.newSubManager()) {
        model.setFusedAttention(fused);
        // null bias: plainly causal (the fused kernels take no mask at all)
        float[] got = model.forward(step.create(ids, new Shape(1, t)), step.create(pos, new Shape(1, t)), null)
            .toFloatArray();
        float[] w = want.toFloats();
        double worst = 0;
        for (int i = 0; i < w.length; i++) {
          worst = Math.max(worst, Math.abs(w[i] - got[i]));
        }
        assertTrue(worst <= 1e-4, name + (fused ? " fused" : " matmul") + ", no mask: logits off by " + worst);
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny-qwen2", "tiny-llama", "tiny-qwen3"})
  void fusedAttentionGivesTheGoldenLogitsAndTheSameGradients(String name) throws Exception {
    assumeTrue(NativeTorch.available(), "needs the PyTorch set up by scripts/setup-pytorch.sh");
    GoldenBatch batch = GoldenBatch.of(name);
    float[][] grads = new float[2][];
    for (int fused = 0; fused < 2; fused++) {
      try (NDManager root = NDManager.newBaseManager();
          CausalLM model = HfCheckpoint.load(Fixtures.model(name), root.newSubManager());
          NDManager step = root.newSubManager()) {
        model.setFusedAttention(fused == 1);
        model.setTrainable(true);
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          NDArray logits = batch.forward(model, step);
          double worst = batch.diff(logits.toFloatArray(), model.config().vocabSize()).max();
          assertTrue(worst <= 1e-4, name + (fused == 1 ? " fused" : " matmul") + " attention: logits off by " + worst);
          // a loss over the real positions only (padding rows differ by design: uniform vs kernel-defined)
          NDArray m = batch.maskArray(step);
          gc.backward(logits.square().mean(new int[] {-1}).mul(m).sum());
        }
        String p = "model.layers.0.self_attn.q_proj.weight";
        grads[fused] = model.parameters().get(p).getGradient().toFloatArray();
      }
    }
    double max = 0;
    double worst = 0;
    for (int i = 0; i < grads[0].length; i++) {
      max = Math.max(max, Math.abs(grads[0][i]));
      worst = Math.max(worst, Math.abs(grads[0][i] - grads[1][i]));
    }
    assertTrue(worst <= 1e-4 * max, name + ": q_proj gradient differs by " + worst + " (largest " + max + ")");
  }
}
