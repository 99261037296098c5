package io.grpo4j.datasets.config;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A YAML mapping being read into a validated config: every getter names the full key path in its error, and
 * {@link #finish()} rejects keys nobody asked for (typos), listing the known ones.
 */
public final class ConfigMap {
  private final String path; // "", "dataset", "rewards[0]"
  private final Map<String, Object> values;
  private final Set<String> known = new LinkedHashSet<>();

  public ConfigMap(String path, Map<String, ?> values) {
    this.path = path;
    this.values = values == null ? new LinkedHashMap<>() : new LinkedHashMap<>(values);
  }

  public String key(String k) {
    return path.isEmpty() ? k : path + "." + k;
  }

  public boolean has(String k) {
    known.add(k);
    return values.containsKey(k) && values.get(k) != null;
  }

  public Object raw(String k) {
    known.add(k);
    return values.get(k);
  }

  public String string(String k, String def) {
    Object v = raw(k);
    if (v == null) {
      return def;
    }
    if (v instanceof Map || v instanceof List) {
      throw new ConfigException(key(k) + ": expected a string, got " + describe(v));
    }
    return v.toString();
  }

  public String oneOf(String k, String def, String... allowed) {
    String v = string(k, def);
    for (String a : allowed) {
      if (a.equals(v)) {
        return v;
      }
    }
    throw new ConfigException(key(k) + ": \"" + v + "\" is not one of " + String.join(" | ", allowed));
  }

  public int integer(String k, int def, int min, int max) {
    Object v = raw(k);
    if (v == null) {
      return def;
    }
    if (!(v instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
      throw new ConfigException(key(k) + ": expected an integer, got " + describe(v));
    }
    long x = n.longValue();
    if (x < min || x > max) {
      throw new ConfigException(key(k) + ": " + x + " is outside [" + min + ", " + max + "]");
    }
    return (int) x;
  }

  public long longValue(String k, long def) {
    Object v = raw(k);
    if (v == null) {
      return def;
    }
    if (!(v instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
      throw new ConfigException(key(k) + ": expected an integer, got " + describe(v));
    }
    return n.longValue();
  }

  public double number(String k, double def, double min, double max) {
    Object v = raw(k);
    if (v == null) {
      return def;
    }
    if (!(v instanceof Number n)) {
      throw new ConfigException(key(k) + ": expected a number, got " + describe(v));
    }
    double x = n.doubleValue();
    if (!(x >= min && x <= max)) {
      throw new ConfigException(key(k) + ": " + x + " is outside [" + min + ", " + max + "]");
    }
    return x;
  }

  public boolean bool(String k, boolean def) {
    Object v = raw(k);
    if (v == null) {
      return def;
    }
    if (!(v instanceof Boolean b)) {
      throw new ConfigException(key(k) + ": expected true or false, got " + describe(v));
    }
    return b;
  }

  /** A list of strings; a single string is a one-element list. */
  public List<String> strings(String k, List<String> def) {
    Object v = raw(k);
    if (v == null) {
      return def;
    }
    if (v instanceof String s) {
      return List.of(s);
    }
    if (!(v instanceof List<?> l)) {
      throw new ConfigException(key(k) + ": expected a list, got " + describe(v));
    }
    List<String> out = new ArrayList<>();
    for (Object o : l) {
      if (o instanceof Map || o instanceof List) {
        throw new ConfigException(key(k) + ": expected a list of strings, found " + describe(o));
      }
      out.add(String.valueOf(o));
    }
    return out;
  }

  @SuppressWarnings("unchecked")
  public ConfigMap map(String k) {
    Object v = raw(k);
    if (v == null) {
      return new ConfigMap(key(k), Map.of());
    }
    if (!(v instanceof Map)) {
      throw new ConfigException(key(k) + ": expected a mapping, got " + describe(v));
    }
    return new ConfigMap(key(k), (Map<String, Object>) v);
  }

  @SuppressWarnings("unchecked")
  public List<ConfigMap> maps(String k) {
    Object v = raw(k);
    if (v == null) {
      return List.of();
    }
    if (!(v instanceof List<?> l)) {
      throw new ConfigException(key(k) + ": expected a list, got " + describe(v));
    }
    List<ConfigMap> out = new ArrayList<>();
    for (int i = 0; i < l.size(); i++) {
      Object o = l.get(i);
      if (!(o instanceof Map)) {
        throw new ConfigException(key(k) + "[" + i + "]: expected a mapping, got " + describe(o));
      }
      out.add(new ConfigMap(key(k) + "[" + i + "]", (Map<String, Object>) o));
    }
    return out;
  }

  /** The raw mapping (for free-form parts such as plugin params, validated elsewhere). */
  @SuppressWarnings("unchecked")
  public Map<String, Object> freeform(String k) {
    Object v = raw(k);
    if (v == null) {
      return Map.of();
    }
    if (!(v instanceof Map)) {
      throw new ConfigException(key(k) + ": expected a mapping, got " + describe(v));
    }
    return (Map<String, Object>) v;
  }

  /** Rejects keys no getter asked for. */
  public void finish() {
    for (String k : values.keySet()) {
      if (!known.contains(k)) {
        throw new ConfigException(key(k) + ": unknown key (known here: " + String.join(", ", known) + ")");
      }
    }
  }

  static String describe(Object v) {
    if (v instanceof String s) {
      return "\"" + s + "\"";
    }
    if (v instanceof Map) {
      return "a mapping";
    }
    if (v instanceof List) {
      return "a list";
    }
    return String.valueOf(v);
  }
}
