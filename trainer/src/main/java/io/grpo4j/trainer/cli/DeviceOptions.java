package io.grpo4j.trainer.cli;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.Precision;
import io.grpo4j.trainer.model.Runtime;
import picocli.CommandLine.Option;

/** Where and in which arithmetic a command runs its model: --device and --precision. */
public final class DeviceOptions {
  @Option(names = "--device", defaultValue = "cpu", description = "cpu, gpu or gpu(N) (default: ${DEFAULT-VALUE}).")
  public String device;

  @Option(names = "--precision", defaultValue = "auto",
      description = "auto | fp32 | tf32 | bf16: bf16 = mixed precision (float32 weights, bf16 matmuls); auto = bf16 on a"
          + " GPU, fp32 on a CPU (default: ${DEFAULT-VALUE}).")
  public String precision;

  public Device device() {
    return Runtime.device(device);
  }

  public Precision precision() {
    return Precision.parse("--precision", precision, device());
  }

  public NDManager rootManager() {
    return NDManager.newBaseManager(device());
  }

  /** Loads a checkpoint's weights into a child of {@code root} (on --device) and sets --precision. */
  public CausalLM load(HfCheckpoint ckpt, NDManager root) {
    Precision p = precision();
    String note = p.noteFor(root.getDevice());
    if (note != null) {
      System.err.println(note);
    }
    return ckpt.loadModel(root.newSubManager(), p);
  }
}
