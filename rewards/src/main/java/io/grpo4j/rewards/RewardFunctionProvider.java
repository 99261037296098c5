package io.grpo4j.rewards;

import java.util.List;

/**
 * Creates a {@link RewardFunction} from its YAML params. Found through {@link java.util.ServiceLoader}: list the
 * implementing class in {@code META-INF/services/io.grpo4j.rewards.RewardFunctionProvider} of your jar and give the
 * jar in the YAML ({@code plugins: [path/to/my-rewards.jar]}) or with {@code --plugin}.
 *
 * <pre>{@code
 * public final class ShortAnswerProvider implements RewardFunctionProvider {
 *   public String name() { return "short_answer"; }
 *   public String description() { return "1 when the completion is under max_chars characters"; }
 *   public List<ParamSpec> params() { return List.of(ParamSpec.of("max_chars", "int", 200, "limit")); }
 *   public RewardFunction create(Params p) { return new ShortAnswer(p.getInt("max_chars")); }
 * }
 * }</pre>
 */
public interface RewardFunctionProvider {
  /** The name used in YAML ({@code rewards: [{name: ...}]}); lowercase with underscores by convention. */
  String name();

  String description();

  /** Every accepted param with its default; anything else in the YAML is rejected before a run starts. */
  List<ParamSpec> params();

  /** Builds the function; {@code params} is already validated against {@link #params()}. */
  RewardFunction create(Params params);
}
