package io.grpo4j.trainer.generation;

import java.util.List;
import java.util.Map;

/**
 * How likely the model found each prompt token given the tokens before it: what OpenAI's {@code echo} with
 * {@code logprobs} returns and what lm-eval-harness sums for log-likelihood tasks. Raw model log-probabilities
 * (log-softmax of the logits, no temperature or penalties), as vLLM's prompt_logprobs.
 *
 * @param logprobs one per prompt token; the first is NaN (nothing precedes it)
 * @param top per prompt token the most likely alternatives (token to log-prob, best first), or null when none were
 *     asked for; the first entry is null
 */
public record PromptLogprobs(float[] logprobs, List<Map<Long, Float>> top) {}
