package io.grpo4j.datasets.tasks;

import java.math.BigInteger;

/** An exact fraction: countdown equations are checked without floating point (3/7*7 is exactly 3). */
record Rational(BigInteger num, BigInteger den) {
  Rational {
    if (den.signum() == 0) {
      throw new ArithmeticException("division by zero");
    }
    if (den.signum() < 0) {
      num = num.negate();
      den = den.negate();
    }
    BigInteger g = num.gcd(den);
    if (!g.equals(BigInteger.ONE) && g.signum() != 0) {
      num = num.divide(g);
      den = den.divide(g);
    }
  }

  static Rational of(long n) {
    return new Rational(BigInteger.valueOf(n), BigInteger.ONE);
  }

  Rational add(Rational o) {
    return new Rational(num.multiply(o.den).add(o.num.multiply(den)), den.multiply(o.den));
  }

  Rational sub(Rational o) {
    return new Rational(num.multiply(o.den).subtract(o.num.multiply(den)), den.multiply(o.den));
  }

  Rational mul(Rational o) {
    return new Rational(num.multiply(o.num), den.multiply(o.den));
  }

  Rational div(Rational o) {
    return new Rational(num.multiply(o.den), den.multiply(o.num));
  }

  boolean isInteger() {
    return den.equals(BigInteger.ONE);
  }

  @Override
  public String toString() {
    return isInteger() ? num.toString() : num + "/" + den;
  }
}
