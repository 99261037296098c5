package io.grpo4j.trainer.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One tensor as stored in a safetensors file: its stored dtype ("F32", "F16", "BF16", "I64", "I32"), shape and
 * little-endian bytes. Conversions to and from float32 happen here, in Java, because DJL 0.35's PyTorch JNI
 * cannot convert bfloat16.
 */
public record Tensor(String dtype, long[] shape, ByteBuffer data) {

  public Tensor {
    data = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long expected = numel(shape) * bytesPerElement(dtype);
    if (data.remaining() != expected) {
      throw new ModelFormatException(
          "tensor of shape " + Arrays.toString(shape) + " and dtype " + dtype + " needs " + expected
              + " bytes, has " + data.remaining());
    }
  }

  public static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  public long numel() {
    return numel(shape);
  }

  public static int bytesPerElement(String dtype) {
    return switch (dtype) {
      case "F32", "I32" -> 4;
      case "F16", "BF16" -> 2;
      case "I64", "F64" -> 8;
      case "U8", "I8", "BOOL" -> 1;
      default -> throw new ModelFormatException("unsupported safetensors dtype " + dtype);
    };
  }

  /** The values as float32, converting F16/BF16/F64/integers exactly as PyTorch's {@code .float()} does. */
  public float[] toFloats() {
    int n = Math.toIntExact(numel());
    float[] out = new float[n];
    ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    switch (dtype) {
      case "F32" -> b.asFloatBuffer().get(out);
      case "BF16" -> {
        for (int i = 0; i < n; i++) {
          out[i] = Float.intBitsToFloat((b.getShort(2 * i) & 0xffff) << 16);
        }
      }
      case "F16" -> {
        for (int i = 0; i < n; i++) {
          out[i] = HalfFloat.toFloat(b.getShort(2 * i));
        }
      }
      case "F64" -> {
        for (int i = 0; i < n; i++) {
          out[i] = (float) b.getDouble(8 * i);
        }
      }
      case "I64" -> {
        for (int i = 0; i < n; i++) {
          out[i] = b.getLong(8 * i);
        }
      }
      case "I32" -> {
        for (int i = 0; i < n; i++) {
          out[i] = b.getInt(4 * i);
        }
      }
      default -> throw new ModelFormatException("cannot convert dtype " + dtype + " to float32");
    }
    return out;
  }

  /** Integer tensors (I64/I32) as longs. */
  public long[] toLongs() {
    int n = Math.toIntExact(numel());
    long[] out = new long[n];
    ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    switch (dtype) {
      case "I64" -> b.asLongBuffer().get(out);
      case "I32" -> {
        for (int i = 0; i < n; i++) {
          out[i] = b.getInt(4 * i);
        }
      }
      default -> {
        float[] f = toFloats();
        for (int i = 0; i < n; i++) {
          out[i] = (long) f[i];
        }
      }
    }
    return out;
  }

  /** Stores float32 values as {@code dtype} (F32, F16 or BF16; bf16 rounds to nearest even like PyTorch). */
  public static Tensor fromFloats(float[] values, long[] shape, String dtype) {
    int n = values.length;
    ByteBuffer b = ByteBuffer.allocate(n * bytesPerElement(dtype)).order(ByteOrder.LITTLE_ENDIAN);
    switch (dtype) {
      case "F32" -> b.asFloatBuffer().put(values);
      case "BF16" -> {
        for (int i = 0; i < n; i++) {
          b.putShort(2 * i, toBf16(values[i]));
        }
      }
      case "F16" -> {
        for (int i = 0; i < n; i++) {
          b.putShort(2 * i, HalfFloat.fromFloat(values[i]));
        }
      }
      default -> throw new ModelFormatException("cannot store float values as dtype " + dtype);
    }
    return new Tensor(dtype, shape.clone(), b);
  }

  static short toBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if (Float.isNaN(f)) {
      return (short) ((bits >>> 16) | 0x40); // keep NaN a quiet NaN
    }
    int rounding = 0x7fff + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }
}
