package io.grpo4j.trainer.model;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import io.grpo4j.trainer.device.NativeTorch;
import java.util.Locale;

/**
 * The arithmetic a model runs in, as one setting ({@code precision:} in a config, {@code --precision} on the
 * commands that run a model):
 *
 * <ul>
 *   <li>{@code fp32}: everything in float32 (the golden tests' arithmetic; the CPU default).
 *   <li>{@code tf32}: float32 tensors, matmuls on TF32 tensor cores (10-bit mantissa inputs, fp32 accumulation), as
 *       {@code torch.set_float32_matmul_precision("high")}. Only NVIDIA GPUs from Ampere on have them; on a CPU it
 *       is fp32.
 *   <li>{@code bf16}: mixed precision as {@code torch.autocast(dtype=bfloat16)} does it. Weights, gradients and AdamW
 *       moments stay float32 (the master copy, what checkpoints hold); each forward casts the matmul weights and
 *       inputs to bfloat16, so the matmuls and attention run in bf16 while the residual stream, RMSNorm, softmax,
 *       log-softmax, log-probs and the loss stay float32. Sampling uses a bf16 copy of the weights, refreshed in
 *       place after every update.
 * </ul>
 */
public enum Precision {
  FP32,
  TF32,
  BF16;

  /** The dtype matmuls run in. */
  public DataType computeType() {
    return this == BF16 ? DataType.BFLOAT16 : DataType.FLOAT32;
  }

  public boolean mixed() {
    return this == BF16;
  }

  public String configName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /**
   * The default for a device: bf16 on a GPU when the set-up PyTorch can do it (as TRL's bf16=True), fp32 on a CPU
   * (small models gain nothing from bf16 there, and the bundled CPU build cannot run it).
   */
  public static Precision auto(Device device) {
    return device.isGpu() && NativeTorch.available() ? BF16 : FP32;
  }

  /** Parses auto | fp32 | tf32 | bf16 for {@code device}; {@code where} names the key or flag in the error. */
  public static Precision parse(String where, String value, Device device) {
    if (value.trim().equalsIgnoreCase("auto")) {
      return auto(device);
    }
    return parse(where, value);
  }

  /** Parses fp32 | tf32 | bf16; {@code where} names the key or flag in the error. */
  public static Precision parse(String where, String value) {
    try {
      return valueOf(value.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(where + ": \"" + value + "\" is not auto, fp32, tf32 or bf16");
    }
  }

  /**
   * Checks that this precision can run on {@code device} and sets the process-wide matmul mode. bf16 needs the
   * PyTorch JNI that scripts/setup-pytorch.sh builds (DJL's bundled one has no bfloat16 and no cast that autograd
   * records).
   */
  public void apply(Device device) {
    if (this == BF16) {
      NativeTorch.require("precision bf16");
    }
    if (NativeTorch.available()) {
      NativeTorch.setFloat32MatmulPrecision(this == TF32 ? "high" : "highest");
    }
  }

  /** A one-line note when the setting changes nothing on this device (tf32 on a CPU), else null. */
  public String noteFor(Device device) {
    if (this == TF32 && !device.isGpu()) {
      return "precision tf32 runs as fp32 on a CPU (TF32 tensor cores are a GPU feature)";
    }
    return null;
  }
}
