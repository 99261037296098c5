package io.grpo4j.trainer.cli;

import io.grpo4j.trainer.generation.SamplingParams;
import picocli.CommandLine.Option;

/** Sampling flags shared by generate, bench and eval. */
public final class SamplingOptions {
  @Option(names = "--max-new-tokens", defaultValue = "128", description = "Completion budget (default: ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(names = "--greedy", description = "Argmax decoding (ignores temperature and filters).")
  boolean greedy;

  @Option(names = "--temperature", defaultValue = "1.0", description = "Default: ${DEFAULT-VALUE}.")
  double temperature;

  @Option(names = "--top-p", defaultValue = "1.0", description = "Nucleus sampling, 1 = off (default: ${DEFAULT-VALUE}).")
  double topP;

  @Option(names = "--top-k", defaultValue = "0", description = "Keep the k most likely tokens, 0 = off (default: ${DEFAULT-VALUE}).")
  int topK;

  @Option(names = "--min-p", defaultValue = "0.0", description = "Min-p filter, 0 = off (default: ${DEFAULT-VALUE}).")
  double minP;

  @Option(names = "--repetition-penalty", defaultValue = "1.0", description = "1 = off (default: ${DEFAULT-VALUE}).")
  double repetitionPenalty;

  @Option(names = "--seed", defaultValue = "0", description = "Sampling seed; same seed, same tokens (default: ${DEFAULT-VALUE}).")
  long seed;

  SamplingParams params(int[] stopIds) {
    return new SamplingParams(maxNewTokens, greedy, temperature, topP, topK, minP, repetitionPenalty, stopIds);
  }
}
