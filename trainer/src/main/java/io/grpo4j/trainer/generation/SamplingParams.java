package io.grpo4j.trainer.generation;

/**
 * How to pick each next token. Processing order follows transformers' generate: repetition penalty, temperature,
 * top-k, top-p, min-p, then a draw (or argmax when greedy).
 *
 * @param maxNewTokens completion budget; a completion that reaches it finishes with reason "length"
 * @param greedy argmax instead of sampling (temperature and filters are then irrelevant)
 * @param temperature logits are divided by it; must be > 0
 * @param topP nucleus: keep the smallest set of most likely tokens whose probability sums to at least this (1 = off)
 * @param topK keep the k most likely tokens (0 = off)
 * @param minP drop tokens whose probability is below minP times the top token's (0 = off)
 * @param repetitionPenalty CTRL-style penalty on tokens already in the prompt or completion (1 = off)
 * @param stopTokenIds a completion ends (reason "stop") right after emitting one of these
 */
public record SamplingParams(
    int maxNewTokens,
    boolean greedy,
    double temperature,
    double topP,
    int topK,
    double minP,
    double repetitionPenalty,
    int[] stopTokenIds) {

  public SamplingParams {
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("max_new_tokens must be >= 1, got " + maxNewTokens);
    }
    if (!greedy && !(temperature > 0)) {
      throw new IllegalArgumentException("temperature must be > 0 (use greedy for argmax), got " + temperature);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("top_k must be >= 0 (0 = off), got " + topK);
    }
    if (!(minP >= 0 && minP < 1)) {
      throw new IllegalArgumentException("min_p must be in [0, 1), got " + minP);
    }
    if (!(repetitionPenalty > 0)) {
      throw new IllegalArgumentException("repetition_penalty must be > 0 (1 = off), got " + repetitionPenalty);
    }
    stopTokenIds = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
  }

  public static SamplingParams greedy(int maxNewTokens) {
    return new SamplingParams(maxNewTokens, true, 1.0, 1.0, 0, 0.0, 1.0, new int[0]);
  }

  public static SamplingParams sample(int maxNewTokens, double temperature) {
    return new SamplingParams(maxNewTokens, false, temperature, 1.0, 0, 0.0, 1.0, new int[0]);
  }

  public SamplingParams withStopTokenIds(int[] ids) {
    return new SamplingParams(maxNewTokens, greedy, temperature, topP, topK, minP, repetitionPenalty, ids);
  }

  public SamplingParams withFilters(double topP, int topK, double minP, double repetitionPenalty) {
    return new SamplingParams(maxNewTokens, greedy, temperature, topP, topK, minP, repetitionPenalty,
        stopTokenIds);
  }

  boolean isStop(long token) {
    for (int s : stopTokenIds) {
      if (s == token) {
        return true;
      }
    }
    return false;
  }
}
