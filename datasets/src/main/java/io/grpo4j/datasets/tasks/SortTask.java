package io.grpo4j.datasets.tasks;

import io.grpo4j.datasets.Example;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Sort a list of integers ascending. Step-by-step reasoning (repeatedly picking the smallest remaining number)
 * visibly helps a small model, which cannot sort long lists in one shot.
 */
public final class SortTask implements Task {
  private final int minLength;
  private final int maxLength;
  private final int maxValue;

  public SortTask(int minLength, int maxLength, int maxValue) {
    if (minLength < 2 || maxLength < minLength || maxLength > 50 || maxValue < 2) {
      throw new IllegalArgumentException("sort: 2 <= min_length <= max_length <= 50, max_value >= 2");
    }
    this.minLength = minLength;
    this.maxLength = maxLength;
    this.maxValue = maxValue;
  }

  @Override
  public String name() {
    return "sort";
  }

  @Override
  public List<Example> generate(int n, long seed) {
    List<Example> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + i);
      int k = minLength + r.nextInt(maxLength - minLength + 1);
      List<Integer> nums = new ArrayList<>();
      for (int j = 0; j < k; j++) {
        nums.add(r.nextInt(maxValue + 1));
      }
      List<Integer> sorted = new ArrayList<>(nums);
      sorted.sort(null);
      Map<String, Object> f = new LinkedHashMap<>();
      f.put("numbers", List.copyOf(nums));
      f.put("answer", join(sorted));
      out.add(new Example("sort:" + seed + ":" + i, "Sort these numbers in ascending order: " + join(nums) + ".",
          null, f));
    }
    return out;
  }

  @Override
  public String solution(Example e) {
    List<Integer> rest = new ArrayList<>();
    for (Object o : (List<?>) e.fields().get("numbers")) {
      rest.add(Integer.parseInt(o.toString()));
    }
    List<Integer> done = new ArrayList<>();
    StringBuilder think = new StringBuilder();
    while (!rest.isEmpty()) {
      int min = rest.stream().min(Integer::compare).orElseThrow();
      think.append("smallest of ").append(join(rest)).append(" is ").append(min).append(". ");
      rest.remove(Integer.valueOf(min));
      done.add(min);
    }
    return "<think>" + think.toString().trim() + "</think><answer>" + join(done) + "</answer>";
  }

  @Override
  public double check(Map<String, Object> fields, String completion) {
    String a = Answers.last(completion);
    Object gold = fields.get("answer");
    if (a == null || gold == null) {
      return 0.0;
    }
    return normalize(a).equals(normalize(gold.toString())) ? 1.0 : 0.0;
  }

  private static String normalize(String s) {
    return s.replaceAll("[\\[\\]\\s]", "");
  }

  static String join(List<Integer> xs) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < xs.size(); i++) {
      sb.append(i == 0 ? "" : ", ").append(xs.get(i));
    }
    return sb.toString();
  }
}
