package io.grpo4j.rewards;


import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.TreeMap;

/**
 * Every {@link RewardFunctionProvider} on the classpath plus those in plugin jars, by name. Two providers with one
 * name are an error naming both classes, so a plugin can never silently shadow a built-in.
 */
public final class RewardRegistry {
  private final Map<String, RewardFunctionProvider> providers = new TreeMap<>();

  private RewardRegistry() {}

  /** Built-ins and anything on the classpath, plus the given plugin jars. */
  public static RewardRegistry load(List<Path> pluginJars) {
    RewardRegistry r = new RewardRegistry();
    r.addAll(ServiceLoader.load(RewardFunctionProvider.class, RewardRegistry.class.getClassLoader()), "classpath");
    if (pluginJars != null && !pluginJars.isEmpty()) {
      List<URL> urls = new ArrayList<>();
      for (Path jar : pluginJars) {
        if (!Files.isRegularFile(jar)) {
          throw new RewardConfigException("plugins: jar " + jar + " does not exist");
        }
        try {
          urls.add(jar.toUri().toURL());
        } catch (MalformedURLException e) {
          throw new RewardConfigException("plugins: bad path " + jar);
        }
      }
      URLClassLoader loader = new URLClassLoader(urls.toArray(URL[]::new), RewardRegistry.class.getClassLoader());
      int before = r.providers.size();
      r.addAll(ServiceLoader.load(RewardFunctionProvider.class, loader), pluginJars.toString());
      if (r.providers.size() == before) {
        throw new RewardConfigException("plugins: " + pluginJars + " declare no reward provider (add the class name"
            + " to META-INF/services/" + RewardFunctionProvider.class.getName() + ")");
      }
    }
    return r;
  }

  private void addAll(ServiceLoader<RewardFunctionProvider> loader, String where) {
    try {
      for (RewardFunctionProvider p : loader) {
        RewardFunctionProvider old = providers.get(p.name());
        if (old != null && !old.getClass().getName().equals(p.getClass().getName())) {
          throw new RewardConfigException("two reward plugins are named \"" + p.name() + "\": "
              + old.getClass().getName() + " and " + p.getClass().getName() + " (from " + where + ")");
        }
        providers.putIfAbsent(p.name(), p);
      }
    } catch (ServiceConfigurationError e) {
      throw new RewardConfigException("reward plugin from " + where + " could not be loaded: " + e.getMessage());
    }
  }

  public Map<String, RewardFunctionProvider> providers() {
    return java.util.Collections.unmodifiableMap(providers);
  }

  /** Builds a configured function; unknown names list what is available. */
  public RewardFunction create(RewardSpec spec) {
    RewardFunctionProvider p = providers.get(spec.name());
    if (p == null) {
      throw new RewardConfigException("unknown reward \"" + spec.name() + "\"; available: "
          + String.join(", ", providers.keySet()));
    }
    return p.create(Params.validate(spec.name(), p.params(), spec.params()));
  }

}
