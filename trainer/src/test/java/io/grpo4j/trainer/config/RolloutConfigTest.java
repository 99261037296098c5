package io.grpo4j.trainer.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The rollout: section: defaults, and errors that name the key. */
class RolloutConfigTest {
  static RolloutConfig parse(Map<String, Object> m) {
    return RolloutConfig.parse(new ConfigMap("rollout", m));
  }

  static String error(Map<String, Object> m) {
    return assertThrows(ConfigException.class, () -> parse(m)).getMessage();
  }

  @Test
  void defaultsAreLocalAndOpenAiNeedsServers() {
    RolloutConfig d = parse(Map.of());
    assertFalse(d.remote());
    assertEquals(1, d.syncEvery());
    assertTrue(d.tisCorrection());
    assertEquals(3.0, d.tisCap());
    RolloutConfig r = parse(Map.of("backend", "openai", "urls", List.of("http://a:8000", "https://b/"),
        "server", "vllm", "sync_every", 4, "max_concurrency", 32));
    assertTrue(r.remote());
    assertEquals(List.of("http://a:8000", "https://b/"), r.urls());
    assertEquals("vllm", r.server());
    assertTrue(error(Map.of("backend", "openai")).contains("rollout.urls"));
    assertTrue(error(Map.of("backend", "openai", "urls", List.of("localhost:8000"))).contains("rollout.urls"));
    assertTrue(error(Map.of("backend", "ray")).contains("rollout.backend"));
    assertTrue(error(Map.of("server", "tgi")).contains("rollout.server"));
    assertTrue(error(Map.of("sync_every", 0)).contains("rollout.sync_every"));
    assertTrue(error(Map.of("tis_cap", 0.5)).contains("rollout.tis_cap"));
    assertTrue(error(Map.of("url", "http://a")).contains("rollout.url"));
  }
}
