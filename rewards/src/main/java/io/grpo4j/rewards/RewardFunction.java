package io.grpo4j.rewards;

import java.util.List;

/**
 * A reward: scores a batch of completions, one value per completion, in order.
 *
 * <p>Return {@code null} for a completion the reward does not apply to (a code reward on a math row): it then
 * counts neither as a success nor as a failure in the weighted sum and the metrics. Batched on purpose, so a
 * function can vectorise, or call a server once per batch.
 *
 * <pre>{@code
 * public final class ShortAnswer implements RewardFunction {
 *   public String name() { return "short_answer"; }
 *   public List<Double> score(List<Completion> batch) {
 *     return batch.stream().map(c -> c.text().length() < 200 ? 1.0 : 0.0).toList();
 *   }
 * }
 * }</pre>
 *
 * Implementations must be thread-safe if they keep state: batches of different steps may overlap in time.
 */
public interface RewardFunction extends AutoCloseable {
  String name();

  List<Double> score(List<Completion> completions);

  /** Releases resources (processes, pools); called once when the run ends. */
  @Override
  default void close() {}
}
