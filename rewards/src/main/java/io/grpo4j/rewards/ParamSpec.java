package io.grpo4j.rewards;

/**
 * One configurable parameter of a reward plugin.
 *
 * @param type one of "double", "int", "boolean", "string", "list" (a list of strings), "map" (a JSON object)
 * @param defaultValue used when the YAML leaves it out; null means required when {@code required} is true
 */
public record ParamSpec(String name, String type, Object defaultValue, String description, boolean required) {
  public static ParamSpec of(String name, String type, Object defaultValue, String description) {
    return new ParamSpec(name, type, defaultValue, description, false);
  }

  public static ParamSpec required(String name, String type, String description) {
    return new ParamSpec(name, type, null, description, true);
  }
}
