package io.grpo4j.datasets.tasks;

import io.grpo4j.datasets.Example;
import java.util.List;
import java.util.Map;

/**
 * A synthetic reasoning task: generates examples from a seed, writes a worked R1-format solution for each (the
 * cold-start SFT data), and checks completions (it doubles as a reward plugin and an eval, named after the task).
 */
public interface Task {
  String name();

  /** Examples {@code 0..n-1} for this seed; the same seed gives the same examples in any process. */
  List<Example> generate(int n, long seed);

  /** A worked completion: {@code <think>step by step...</think><answer>...</answer>}. */
  String solution(Example example);

  /** 1.0 if the completion's {@code <answer>} solves the example described by {@code fields}, else 0.0. */
  double check(Map<String, Object> fields, String completion);
}
