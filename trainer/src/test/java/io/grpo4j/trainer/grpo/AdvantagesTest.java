package io.grpo4j.trainer.grpo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.model.SafeTensors;
import org.junit.jupiter.api.Test;

class AdvantagesTest {
  @Test
  void groupScalingByHand() {
    // group [1, 0, 0, 1]: mean 0.5, Bessel std sqrt(1/3) = 0.57735
    var r = Advantages.compute(new double[] {1, 0, 0, 1, 2, 2, 2, 2}, 4, "group");
    double s = Math.sqrt(1.0 / 3) + 1e-4;
    assertArrayEquals(new double[] {0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s, 0, 0, 0, 0}, r.advantages(), 1e-12);
    assertEquals(1, r.zeroStdGroups(), "the all-equal group carries zero advantage and is counted");
  }

  @Test
  void noneAndBatchScaling() {
    var none = Advantages.compute(new double[] {3, 1}, 2, "none");
    assertArrayEquals(new double[] {1, -1}, none.advantages(), 1e-12);
    var batch = Advantages.compute(new double[] {3, 1, 0, 0}, 2, "batch");
    double mean = 1;
    double std = Math.sqrt((4 + 0 + 1 + 1) / 3.0);
    assertArrayEquals(new double[] {1 / (std + 1e-4), -1 / (std + 1e-4), 0, 0}, batch.advantages(), 1e-12);
    assertEquals(1, batch.zeroStdGroups());
    assertEquals(1, mean);
  }

  @Test
  void groupOfOneHasZeroAdvantage() {
    var r = Advantages.compute(new double[] {5, -1, 3}, 1, "group");
    assertArrayEquals(new double[] {0, 0, 0}, r.advantages(), 0);
    assertEquals(3, r.zeroStdGroups());
  }

  @Test
  void matchesTheGoldenAdvantages() throws Exception {
    var g = SafeTensors.read(Fixtures.root().resolve("grpo-golden.safetensors"));
    float[] rewards = g.get("rewards").toFloats();
    float[] want = g.get("advantages").toFloats();
    double[] r = new double[rewards.length];
    for (int i = 0; i < r.length; i++) {
      r[i] = rewards[i];
    }
    double[] got = Advantages.compute(r, 4, "group").advantages();
    for (int i = 0; i < r.length; i++) {
      assertEquals(want[i], got[i], 1e-6, "advantage " + i);
    }
  }
}
