package io.grpo4j.datasets.tasks;

import io.grpo4j.datasets.Example;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Integer arithmetic: {@code terms} numbers of up to {@code digits} digits joined by the allowed operators
 * (+ - *), with the usual precedence. With {@code curriculum}, the first examples have 1-digit numbers and the
 * size grows to {@code digits} along the set. The worked solution ({@code direct}) multiplies first, then adds left
 * to right, one result per operation; {@code columns} (additions only) writes schoolbook column addition, one digit
 * column at a time from the ones with its carry ("7+8=15 4+3+1=8 so 85"): the reasoning a small model can learn to
 * get right, where it cannot add whole numbers at a glance.
 */
public final class ArithmeticTask implements Task {
  private final int digits;
  private final int terms;
  private final String ops;
  private final boolean curriculum;
  private final boolean columns;

  public ArithmeticTask(int digits, int terms, String ops, boolean curriculum) {
    this(digits, terms, ops, curriculum, "direct");
  }

  /** @param solution direct | columns (column addition; needs ops "+") */
  public ArithmeticTask(int digits, int terms, String ops, boolean curriculum, String solution) {
    if (digits < 1 || digits > 9 || terms < 2 || terms > 8 || ops.isEmpty() || !ops.matches("[+\\-*]+")) {
      throw new IllegalArgumentException("arithmetic: digits 1..9, terms 2..8, ops from \"+-*\"");
    }
    if (solution.equals("columns") && !ops.equals("+")) {
      throw new IllegalArgumentException("arithmetic: solution \"columns\" works out additions only; use ops \"+\""
          + " (got \"" + ops + "\") or solution \"direct\"");
    }
    this.columns = solution.equals("columns");
    this.digits = digits;
    this.terms = terms;
    this.ops = ops;
    this.curriculum = curriculum;
  }

  @Override
  public String name() {
    return "arithmetic";
  }

  @Override
  public List<Example> generate(int n, long seed) {
    List<Example> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + i);
      int d = curriculum ? 1 + (int) ((long) i * digits / Math.max(1, n)) : digits;
      long[] nums = new long[terms];
      char[] op = new char[terms - 1];
      long max = (long) Math.pow(10, d);
      for (int k = 0; k < terms; k++) {
        nums[k] = r.nextLong(d == 1 ? 1 : max / 10, max);
      }
      for (int k = 0; k < terms - 1; k++) {
        op[k] = ops.charAt(r.nextInt(ops.length()));
      }
      StringBuilder expr = new StringBuilder().append(nums[0]);
      for (int k = 0; k < terms - 1; k++) {
        expr.append(' ').append(op[k]).append(' ').append(nums[k + 1]);
      }
      Map<String, Object> f = new LinkedHashMap<>();
      f.put("expression", expr.toString());
      f.put("answer", evaluate(expr.toString()).toString());
      f.put("difficulty", d);
      out.add(new Example("arithmetic:" + seed + ":" + i, "What is " + expr + "?", null, f));
    }
    return out;
  }

  @Override
  public String solution(Example e) {
    String expr = e.fields().get("expression").toString();
    if (columns) {
      return columnSolution(expr);
    }
    List<String> tokens = new ArrayList<>(List.of(expr.split(" ")));
    StringBuilder think = new StringBuilder();
    // multiplications first
    for (int i = 1; i < tokens.size(); i += 2) {
      if (tokens.get(i).equals("*")) {
        BigInteger a = new BigInteger(tokens.get(i - 1));
        BigInteger b = new BigInteger(tokens.get(i + 1));
        BigInteger p = a.multiply(b);
        think.append(a).append(" * ").append(b).append(" = ").append(p).append(". ");
        tokens.set(i - 1, p.toString());
        tokens.remove(i);
        tokens.remove(i);
        i -= 2;
      }
    }
    BigInteger acc = new BigInteger(tokens.get(0));
    for (int i = 1; i < tokens.size(); i += 2) {
      BigInteger b = new BigInteger(tokens.get(i + 1));
      BigInteger next = tokens.get(i).equals("+") ? acc.add(b) : acc.subtract(b);
      think.append(acc).append(' ').append(tokens.get(i)).append(' ').append(b).append(" = ").append(next).append(". ");
      acc = next;
    }
    return "<think>" + think.toString().trim() + "</think><answer>" + acc + "</answer>";
  }

  /** Column addition of "a + b + ...": each column's digits and carry, ones first, then the sum. */
  static String columnSolution(String expr) {
    String[] parts = expr.split(" \\+ ");
    int width = 0;
    for (String p : parts) {
      width = Math.max(width, p.length());
    }
    StringBuilder think = new StringBuilder();
    int carry = 0;
    for (int col = 0; col < width; col++) {
      StringBuilder terms = new StringBuilder();
      int sum = carry;
      for (String p : parts) {
        if (col < p.length()) {
          int d = p.charAt(p.length() - 1 - col) - '0';
          terms.append(terms.length() == 0 ? "" : "+").append(d);
          sum += d;
        }
      }
      if (carry > 0) {
        terms.append('+').append(carry);
      }
      think.append(col == 0 ? "" : " ").append(terms).append('=').append(sum);
      carry = sum / 10;
    }
    BigInteger total = evaluate(expr);
    return "<think>" + think + " so " + total + "</think><answer>" + total + "</answer>";
  }

  @Override
  public double check(Map<String, Object> fields, String completion) {
    String a = Answers.last(completion);
    Object gold = fields.get("answer");
    if (a == null || gold == null) {
      return 0.0;
    }
    try {
      return new BigInteger(a.replace(",", "").trim()).equals(new BigInteger(gold.toString().trim())) ? 1.0 : 0.0;
    } catch (NumberFormatException ex) {
      return 0.0;
    }
  }

  /**
   * Partial credit: the digits of the answer that equal the gold answer's in the same place (aligned at the ones),
   * over the longer length; a sign mismatch or no answer scores 0, the exact value 1.
   */
  static double digitCredit(Map<String, Object> fields, String completion) {
    String a = Answers.last(completion);
    Object gold = fields.get("answer");
    if (a == null || gold == null) {
      return 0.0;
    }
    String p = a.replace(",", "").trim();
    String g = gold.toString().trim();
    if (!p.matches("-?\\d+") || p.startsWith("-") != g.startsWith("-")) {
      return 0.0;
    }
    p = p.replace("-", "");
    g = g.replace("-", "");
    int n = Math.max(p.length(), g.length());
    int right = 0;
    for (int i = 0; i < Math.min(p.length(), g.length()); i++) {
      if (p.charAt(p.length() - 1 - i) == g.charAt(g.length() - 1 - i)) {
        right++;
      }
    }
    return right / (double) n;
  }

  /** Exact value with precedence: products first, then sums left to right. */
  static BigInteger evaluate(String expr) {
    String[] t = expr.split(" ");
    List<BigInteger> sums = new ArrayList<>();
    List<Character> signs = new ArrayList<>();
    BigInteger term = new BigInteger(t[0]);
    for (int i = 1; i < t.length; i += 2) {
      BigInteger b = new BigInteger(t[i + 1]);
      if (t[i].equals("*")) {
        term = term.multiply(b);
      } else {
        sums.add(term);
        signs.add(t[i].charAt(0));
        term = b;
      }
    }
    sums.add(term);
    BigInteger acc = sums.get(0);
    for (int i = 0; i < signs.size(); i++) {
      acc = signs.get(i) == '+' ? acc.add(sums.get(i + 1)) : acc.subtract(sums.get(i + 1));
    }
    return acc;
  }
}
