package io.grpo4j.rewards;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A plugin's parameters after validation against its {@link ParamSpec}s: unknown keys, wrong types and missing
 * required values are errors naming the plugin and the key; absent keys take their defaults.
 */
public final class Params {
  private final String plugin;
  private final Map<String, Object> values;

  private Params(String plugin, Map<String, Object> values) {
    this.plugin = plugin;
    this.values = values;
  }

  public static Params validate(String plugin, List<ParamSpec> specs, Map<String, ?> given) {
    Map<String, ParamSpec> byName = new LinkedHashMap<>();
    specs.forEach(s -> byName.put(s.name(), s));
    Map<String, Object> out = new LinkedHashMap<>();
    if (given != null) {
      for (var e : given.entrySet()) {
        ParamSpec s = byName.get(e.getKey());
        if (s == null) {
          throw new RewardConfigException("reward \"" + plugin + "\": unknown param \"" + e.getKey()
              + "\" (known: " + String.join(", ", byName.keySet()) + ")");
        }
        out.put(e.getKey(), coerce(plugin, s, e.getValue()));
      }
    }
    for (ParamSpec s : specs) {
      if (!out.containsKey(s.name())) {
        if (s.required()) {
          throw new RewardConfigException("reward \"" + plugin + "\": param \"" + s.name() + "\" is required ("
              + s.description() + ")");
        }
        out.put(s.name(), s.defaultValue());
      }
    }
    return new Params(plugin, Collections.unmodifiableMap(out));
  }

  private static Object coerce(String plugin, ParamSpec s, Object v) {
    String where = "reward \"" + plugin + "\": param \"" + s.name() + "\"";
    if (v == null) {
      return null;
    }
    switch (s.type()) {
      case "double" -> {
        if (v instanceof Number n) {
          return n.doubleValue();
        }
        throw new RewardConfigException(where + " must be a number, got " + describe(v));
      }
      case "int" -> {
        if (v instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue())) {
          return n.intValue();
        }
        throw new RewardConfigException(where + " must be an integer, got " + describe(v));
      }
      case "boolean" -> {
        if (v instanceof Boolean b) {
          return b;
        }
        throw new RewardConfigException(where + " must be true or false, got " + describe(v));
      }
      case "string" -> {
        if (v instanceof String || v instanceof Number || v instanceof Boolean) {
          return v.toString();
        }
        throw new RewardConfigException(where + " must be a string, got " + describe(v));
      }
      case "list" -> {
        if (v instanceof List<?> l) {
          List<String> r = new ArrayList<>();
          l.forEach(x -> r.add(String.valueOf(x)));
          return List.copyOf(r);
        }
        if (v instanceof String str) {
          return List.of(str);
        }
        throw new RewardConfigException(where + " must be a list, got " + describe(v));
      }
      case "map" -> {
        if (v instanceof Map<?, ?> m) {
          return m;
        }
        throw new RewardConfigException(where + " must be a mapping, got " + describe(v));
      }
      default -> throw new IllegalStateException("unknown param type " + s.type());
    }
  }

  private static String describe(Object v) {
    return v instanceof String ? "\"" + v + "\"" : v + " (" + v.getClass().getSimpleName() + ")";
  }

  public String plugin() {
    return plugin;
  }

  public double getDouble(String name) {
    return ((Number) require(name)).doubleValue();
  }

  public int getInt(String name) {
    return ((Number) require(name)).intValue();
  }

  public boolean getBoolean(String name) {
    return (Boolean) require(name);
  }

  public String getString(String name) {
    Object v = values.get(name);
    return v == null ? null : v.toString();
  }

  @SuppressWarnings("unchecked")
  public List<String> getList(String name) {
    Object v = values.get(name);
    return v == null ? List.of() : (List<String>) v;
  }

  public Map<String, Object> asMap() {
    return values;
  }

  /** Checks a numeric range and names the plugin and key when it is violated. */
  public double doubleIn(String name, double lo, double hi) {
    double v = getDouble(name);
    if (!(v >= lo && v <= hi)) {
      throw new RewardConfigException("reward \"" + plugin + "\": param \"" + name + "\" = " + v
          + " is outside [" + lo + ", " + hi + "]");
    }
    return v;
  }

  public int intIn(String name, int lo, int hi) {
    int v = getInt(name);
    if (v < lo || v > hi) {
      throw new RewardConfigException("reward \"" + plugin + "\": param \"" + name + "\" = " + v
          + " is outside [" + lo + ", " + hi + "]");
    }
    return v;
  }

  public String oneOf(String name, String... allowed) {
    String v = getString(name);
    for (String a : allowed) {
      if (a.equals(v)) {
        return v;
      }
    }
    throw new RewardConfigException("reward \"" + plugin + "\": param \"" + name + "\" = \"" + v
        + "\" is not one of " + String.join(" | ", allowed));
  }

  private Object require(String name) {
    Object v = values.get(name);
    if (v == null) {
      throw new RewardConfigException("reward \"" + plugin + "\": param \"" + name + "\" has no value");
    }
    return v;
  }
}
