package io.grpo4j.datasets.tasks;

import io.grpo4j.datasets.Example;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The TinyZero countdown task: given 3 or 4 numbers and a target, write an equation that uses each number exactly
 * once with + - * / and parentheses. Targets are built from a random equation over the numbers, so every example
 * is solvable; the checker parses the answer, evaluates it exactly (rationals) and compares the numbers used as a
 * multiset.
 */
public final class CountdownTask implements Task {
  private final int minNumbers;
  private final int maxNumbers;
  private final int maxValue;
  private final int maxTarget;

  public CountdownTask(int minNumbers, int maxNumbers, int maxValue, int maxTarget) {
    if (minNumbers < 2 || maxNumbers > 6 || minNumbers > maxNumbers || maxValue < 2 || maxTarget < 1) {
      throw new IllegalArgumentException("countdown: 2 <= min_numbers <= max_numbers <= 6, max_value >= 2");
    }
    this.minNumbers = minNumbers;
    this.maxNumbers = maxNumbers;
    this.maxValue = maxValue;
    this.maxTarget = maxTarget;
  }

  @Override
  public String name() {
    return "countdown";
  }

  @Override
  public List<Example> generate(int n, long seed) {
    List<Example> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + i);
      while (true) {
        int k = minNumbers + r.nextInt(maxNumbers - minNumbers + 1);
        List<Integer> nums = new ArrayList<>();
        for (int j = 0; j < k; j++) {
          nums.add(1 + r.nextInt(maxValue));
        }
        // combine left to right in a random order with random operators; keep positive integer targets
        List<Integer> order = new ArrayList<>(nums);
        Collections.shuffle(order, new java.util.Random(r.nextLong()));
        String expr = order.get(0).toString();
        Rational v = Rational.of(order.get(0));
        List<String> steps = new ArrayList<>();
        boolean ok = true;
        for (int j = 1; j < k && ok; j++) {
          Rational b = Rational.of(order.get(j));
          char op = "+-*/".charAt(r.nextInt(4));
          Rational next;
          try {
            next = switch (op) {
              case '+' -> v.add(b);
              case '-' -> v.sub(b);
              case '*' -> v.mul(b);
              default -> v.div(b);
            };
          } catch (ArithmeticException ex) {
            ok = false;
            break;
          }
          if (!next.isInteger() || next.num().signum() <= 0) {
            ok = false;
            break;
          }
          steps.add(v + " " + op + " " + b + " = " + next);
          expr = (j == 1 ? expr : "(" + expr + ")") + " " + op + " " + order.get(j);
          v = next;
        }
        if (!ok || v.num().intValue() > maxTarget || v.num().bitLength() > 31) {
          continue;
        }
        int target = v.num().intValue();
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("numbers", List.copyOf(nums));
        f.put("target", target);
        f.put("answer", expr);
        f.put("steps", String.join(". ", steps) + ".");
        String prompt = "Using the numbers " + nums + ", create an equation that equals " + target + ". You can use"
            + " basic arithmetic operations (+, -, *, /) and each number exactly once. Show your work in <think>"
            + " </think> tags and return the final equation in <answer> </answer> tags, for example <answer> (1 + 2)"
            + " / 3 </answer>.";
        out.add(new Example("countdown:" + seed + ":" + i, prompt, null, f));
        break;
      }
    }
    return out;
  }

  @Override
  public String solution(Example e) {
    return "<think>" + e.fields().get("steps") + "</think><answer>" + e.fields().get("answer") + "</answer>";
  }

  @Override
  public double check(Map<String, Object> fields, String completion) {
    String a = Answers.last(completion);
    if (a == null || !a.matches("[0-9+\\-*/() .]+")) {
      return 0.0;
    }
    Object numsObj = fields.get("numbers");
    Object targetObj = fields.get("target");
    if (!(numsObj instanceof List<?> numsList) || targetObj == null) {
      return 0.0;
    }
    List<Integer> want = new ArrayList<>();
    for (Object o : numsList) {
      want.add(Integer.parseInt(o.toString().trim()));
    }
    try {
      ExprParser p = new ExprParser(a);
      Rational v = p.parse();
      List<Integer> used = p.numbers();
      Collections.sort(used);
      Collections.sort(want);
      return used.equals(want) && v.equals(Rational.of(Long.parseLong(targetObj.toString().trim()))) ? 1.0 : 0.0;
    } catch (RuntimeException ex) {
      return 0.0;
    }
  }

  /** Recursive descent over + - * / and parentheses with exact rationals; records every literal it reads. */
  static final class ExprParser {
    private final String s;
    private int i;
    private final List<Integer> numbers = new ArrayList<>();

    ExprParser(String s) {
      this.s = s.replace(" ", "");
    }

    List<Integer> numbers() {
      return numbers;
    }

    Rational parse() {
      Rational v = expr();
      if (i != s.length()) {
        throw new IllegalArgumentException("trailing input at " + i);
      }
      return v;
    }

    private Rational expr() {
      Rational v = term();
      while (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
        char op = s.charAt(i++);
        Rational b = term();
        v = op == '+' ? v.add(b) : v.sub(b);
      }
      return v;
    }

    private Rational term() {
      Rational v = factor();
      while (i < s.length() && (s.charAt(i) == '*' || s.charAt(i) == '/')) {
        char op = s.charAt(i++);
        Rational b = factor();
        v = op == '*' ? v.mul(b) : v.div(b);
      }
      return v;
    }

    private Rational factor() {
      if (i < s.length() && s.charAt(i) == '(') {
        i++;
        Rational v = expr();
        if (i >= s.length() || s.charAt(i) != ')') {
          throw new IllegalArgumentException("missing )");
        }
        i++;
        return v;
      }
      int start = i;
      while (i < s.length() && Character.isDigit(s.charAt(i))) {
        i++;
      }
      if (start == i) {
        throw new IllegalArgumentException("expected a number at " + i); // unary minus is not allowed
      }
      int n = Integer.parseInt(s.substring(start, i));
      numbers.add(n);
      return Rational.of(n);
    }
  }
}
