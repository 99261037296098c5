package io.grpo4j.trainer.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.EngineException;
import org.junit.jupiter.api.Test;

/** The out-of-memory message itself (the real thing is provoked in CudaTest, on a GPU). */
class OutOfMemoryTest {
  private static final String TORCH = "CUDA out of memory. Tried to allocate 38.00 GiB. GPU 0 has a total capacity of"
      + " 139.80 GiB of which 2.10 GiB is free. Including non-PyTorch memory, this process has 137.01 GiB memory in"
      + " use. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF\nException raised from"
      + " malloc at ...";

  @Test
  void recognisesPyTorchsMessageAnywhereInTheCauses() {
    assertTrue(OutOfMemory.is(new EngineException(TORCH)));
    assertTrue(OutOfMemory.is(new RuntimeException("step failed", new IllegalStateException(TORCH))));
    assertFalse(OutOfMemory.is(new EngineException("shape mismatch: [2, 3] vs [3, 2]")));
  }

  @Test
  void saysWhatRanWithWhichShapesAndWhatToLowerInOneLine() {
    OutOfMemory e = OutOfMemory.of(new EngineException(TORCH), Device.gpu(), "the policy update of step 3 (64"
        + " completions x 384 tokens)", "training.minibatch_size (now 0 = all rows at once)");
    String m = e.getMessage();
    assertTrue(m.startsWith("gpu(0) ran out of memory in the policy update of step 3 (64 completions x 384 tokens)"), m);
    assertTrue(m.contains("Lower training.minibatch_size (now 0 = all rows at once)"), m);
    assertTrue(m.endsWith("[CUDA out of memory. Tried to allocate 38.00 GiB. GPU 0 has a total capacity of 139.80 GiB"
        + " of which 2.10 GiB is free.]"), m);
    assertFalse(m.contains("\n"), "one line");
    assertFalse(m.contains("Including non-PyTorch") || m.contains("PYTORCH_CUDA_ALLOC_CONF"), "no advice paragraph");
    assertEquals("10.0 GB", OutOfMemory.logitsGb(64, 256, 152_587));
  }
}
