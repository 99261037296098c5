package io.grpo4j.datasets.config;

/** A config value that cannot be used; the message starts with the full key path. */
public class ConfigException extends IllegalArgumentException {
  public ConfigException(String message) {
    super(message);
  }
}
