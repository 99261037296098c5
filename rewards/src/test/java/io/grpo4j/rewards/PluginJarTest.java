package io.grpo4j.rewards;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The worked third-party plugin in rewards/examples/short-answer-plugin: compiled against this module's classes,
 * packed into a jar with its META-INF/services file, and loaded the way a user's YAML loads it.
 */
class PluginJarTest {
  @TempDir Path tmp;

  static Path example() {
    Path root = Path.of(System.getProperty("grpo.root", ".."));
    return root.resolve("rewards/examples/short-answer-plugin");
  }

  Path buildJar() throws IOException {
    Path src = example().resolve("src/main/java");
    Path classes = Files.createDirectories(tmp.resolve("classes"));
    List<String> files;
    try (Stream<Path> s = Files.walk(src)) {
      files = s.filter(p -> p.toString().endsWith(".java")).map(Path::toString).toList();
    }
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    String cp = System.getProperty("java.class.path");
    List<String> args = new java.util.ArrayList<>(List.of("-d", classes.toString(), "-cp", cp, "--release", "17"));
    args.addAll(files);
    assertEquals(0, javac.run(null, null, null, args.toArray(String[]::new)), "example plugin compiles");
    Path jar = tmp.resolve("short-answer-plugin-1.0.jar");
    Path resources = example().resolve("src/main/resources");
    try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar))) {
      for (Path base : List.of(classes, resources)) {
        try (Stream<Path> s = Files.walk(base)) {
          for (Path p : s.filter(Files::isRegularFile).toList()) {
            out.putNextEntry(new JarEntry(base.relativize(p).toString().replace('\\', '/')));
            out.write(Files.readAllBytes(p));
            out.closeEntry();
          }
        }
      }
    }
    return jar;
  }

  @Test
  void examplePluginLoadsFromItsJarAndScores() throws Exception {
    Path jar = buildJar();
    RewardRegistry reg = RewardRegistry.load(List.of(jar));
    assertTrue(reg.providers().containsKey("short_answer"));
    assertTrue(reg.providers().containsKey("math_answer"), "built-ins stay available");
    try (RewardSet set = RewardSet.create(reg, List.of(
        RewardSpec.of("short_answer", 1.0, Map.of("max_chars", 3)),
        RewardSpec.of("format", 0.5, Map.of())), 0.0, false, 10, 2)) {
      RewardSet.Result r = set.score(List.of(
          Completion.of("<think>x</think><answer>42</answer>", Map.of()),
          Completion.of("<answer>a long answer</answer>", Map.of())));
      assertEquals(1.0, r.values()[0][0]);
      assertEquals(0.0, r.values()[0][1]);
      assertEquals(1.5, r.total()[0], 1e-12);
      assertEquals(0.0, r.total()[1], 1e-12);
    }
  }

  @Test
  void unknownPluginListsTheAvailableOnes() {
    RewardRegistry reg = RewardRegistry.load(List.of());
    var e = assertThrows(RewardConfigException.class, () -> reg.create(RewardSpec.of("math_anwser", 1, Map.of())));
    assertTrue(e.getMessage().contains("math_anwser") && e.getMessage().contains("math_answer")
        && e.getMessage().contains("code_tests"), e.getMessage());
  }

  @Test
  void unknownParamNamesPluginAndKey() {
    RewardRegistry reg = RewardRegistry.load(List.of());
    var e = assertThrows(RewardConfigException.class,
        () -> reg.create(RewardSpec.of("math_answer", 1, Map.of("relative_tolerence", 0.1))));
    assertTrue(e.getMessage().contains("math_answer") && e.getMessage().contains("relative_tolerence"), e.getMessage());
  }

  @Test
  void wrongParamTypeIsNamed() {
    RewardRegistry reg = RewardRegistry.load(List.of());
    var e = assertThrows(RewardConfigException.class,
        () -> reg.create(RewardSpec.of("length", 1, Map.of("max_length", "long"))));
    assertTrue(e.getMessage().contains("length") && e.getMessage().contains("max_length")
        && e.getMessage().contains("integer"), e.getMessage());
  }

  @Test
  void missingJarIsNamed() {
    var e = assertThrows(RewardConfigException.class, () -> RewardRegistry.load(List.of(tmp.resolve("nope.jar"))));
    assertTrue(e.getMessage().contains("nope.jar"));
  }
}
