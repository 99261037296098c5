package io.grpo4j.trainer.model;

/** IEEE 754 binary16 conversions (Java 17 has no Float.float16ToFloat); round-to-nearest-even like PyTorch. */
final class HalfFloat {
  private HalfFloat() {}

  static float toFloat(short h) {
    int bits = h & 0xffff;
    int sign = (bits & 0x8000) << 16;
    int exp = (bits >>> 10) & 0x1f;
    int mant = bits & 0x3ff;
    if (exp == 0) {
      if (mant == 0) {
        return Float.intBitsToFloat(sign);
      }
      // subnormal: value = mant * 2^-24
      float v = mant * 0x1p-24f;
      return sign == 0 ? v : -v;
    }
    if (exp == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }

  static short fromFloat(float f) {
    int bits = Float.floatToRawIntBits(f);
    int sign = (bits >>> 16) & 0x8000;
    int exp = (bits >>> 23) & 0xff;
    int mant = bits & 0x7fffff;
    if (exp == 0xff) {
      return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0));
    }
    int e = exp - 127 + 15;
    if (e >= 0x1f) {
      return (short) (sign | 0x7c00); // overflow to infinity
    }
    if (e <= 0) {
      if (e < -10) {
        return (short) sign; // underflow to zero
      }
      // subnormal half: shift the implicit-one mantissa, round to nearest even
      int m = mant | 0x800000;
      int shift = 14 - e;
      int half = 1 << (shift - 1);
      int rounded = (m + half - 1 + ((m >>> shift) & 1)) >>> shift;
      return (short) (sign | rounded);
    }
    int rounded = (mant + 0xfff + ((mant >>> 13) & 1)) >>> 13;
    int result = (e << 10) + rounded; // a carry out of the mantissa bumps the exponent, as it should
    return (short) (sign | result);
  }
}
