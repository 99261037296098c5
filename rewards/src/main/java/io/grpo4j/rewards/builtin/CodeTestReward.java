package io.grpo4j.rewards.builtin;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.ParamSpec;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardConfigException;
import io.grpo4j.rewards.RewardFunction;
import io.grpo4j.rewards.RewardFunctionProvider;
import io.grpo4j.rewards.sandbox.Sandbox;
import io.grpo4j.rewards.sandbox.SandboxLimits;
import io.grpo4j.rewards.sandbox.SandboxResult;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Runs the completion's last fenced code block against the row's tests in the {@link Sandbox}; the reward is the
 * fraction of tests passed (or 1/0 with {@code all_or_nothing}). Tests are either stdin/stdout pairs
 * ({@code [{"input": ..., "output": ...}]}, or APPS-style {@code {"inputs": [...], "outputs": [...]}}), compared
 * line by line with trailing whitespace ignored, or a string of assert-style Python run after the program, where
 * each top-level assert counts as one test. Expected outputs never enter the sandbox; assert code reaches the
 * interpreter through stdin, never as a file. Rows without tests are not applicable (null).
 */
public final class CodeTestReward implements RewardFunction {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final Sandbox sandbox;
  private final SandboxLimits limits;
  private final String language;
  private final String python;
  private final String testField;
  private final boolean allOrNothing;
  private final ExecutorService pool;
  private final BlockingQueue<Integer> slots;

  public CodeTestReward(Sandbox sandbox, SandboxLimits limits, String language, String python, String testField,
      boolean allOrNothing, int parallelism) {
    this.sandbox = sandbox;
    this.limits = limits;
    this.language = language;
    this.python = python;
    this.testField = testField;
    this.allOrNothing = allOrNothing;
    this.pool = Executors.newFixedThreadPool(parallelism, r -> {
      Thread t = new Thread(r, "code-tests");
      t.setDaemon(true);
      return t;
    });
    this.slots = new ArrayBlockingQueue<>(parallelism);
    for (int i = 0; i < parallelism; i++) {
      slots.add(i);
    }
  }

  public Sandbox sandbox() {
    return sandbox;
  }

  @Override
  public String name() {
    return "code_tests";
  }

  @Override
  public List<Double> score(List<Completion> completions) {
    List<Future<Double>> futures = new ArrayList<>();
    for (Completion c : completions) {
      futures.add(pool.submit(() -> scoreOne(c)));
    }
    List<Double> out = new ArrayList<>();
    for (Future<Double> f : futures) {
      try {
        out.add(f.get());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        futures.forEach(x -> x.cancel(true));
        throw new IllegalStateException("interrupted while running code tests", e);
      } catch (ExecutionException e) {
        throw new IllegalStateException("code_tests failed: " + e.getCause().getMessage(), e.getCause());
      }
    }
    return out;
  }

  Double scoreOne(Completion c) throws IOException, InterruptedException {
    Object tests = c.fields().get(testField);
    if (tests == null) {
      return null;
    }
    String code = lastCodeBlock(c.text(), language);
    if (code == null) {
      return 0.0;
    }
    int slot = slots.take();
    Path dir = Files.createTempDirectory("grpo4j-sandbox-");
    try {
      return run(slot, dir, code, tests);
    } finally {
      slots.add(slot);
      deleteTree(dir);
    }
  }

  private double run(int slot, Path dir, String code, Object tests) throws IOException {
    Object parsed = tests instanceof String s && (s.trim().startsWith("[") || s.trim().startsWith("{"))
        ? tryJson(s) : tests;
    List<String[]> io = ioPairs(parsed);
    if (io != null) {
      Files.writeString(dir.resolve("main.py"), code);
      int passed = 0;
      for (String[] t : io) {
        SandboxResult r = sandbox.run(slot, dir, List.of(python, "-I", "main.py"),
            t[0].getBytes(StandardCharsets.UTF_8), limits);
        if (r.ok() && sameOutput(r.stdout(), t[1])) {
          passed++;
        } else if (allOrNothing) {
          return 0.0;
        }
      }
      return io.isEmpty() ? 0.0 : allOrNothing ? 1.0 : passed / (double) io.size();
    }
    if (parsed instanceof String assertCode) {
      String nonce = UUID.randomUUID().toString();
      Map<String, Object> payload = new LinkedHashMap<>();
      payload.put("program", code);
      payload.put("tests", assertCode);
      payload.put("nonce", nonce);
      SandboxResult r = sandbox.run(slot, dir, List.of(python, "-I", "-c", ASSERT_HARNESS),
          JSON.writeValueAsBytes(payload), limits);
      Matcher m = Pattern.compile("^" + nonce + " (\\d+) (\\d+)$", Pattern.MULTILINE).matcher(r.stdout());
      if (r.timedOut() || r.outputExceeded() || !m.find()) {
        return 0.0;
      }
      int passed = Integer.parseInt(m.group(1));
      int total = Integer.parseInt(m.group(2));
      if (total == 0) {
        return 0.0;
      }
      return allOrNothing ? (passed == total ? 1.0 : 0.0) : passed / (double) total;
    }
    throw new IllegalArgumentException("field \"" + testField + "\" is neither a list of {input, output} pairs nor"
        + " a string of assert-style test code");
  }

  /**
   * Runs the program, then each top-level statement of the tests; asserts count as tests, any other statement is
   * set-up (if it fails, every assert fails). Reports "nonce passed total" on its own line.
   */
  static final String ASSERT_HARNESS = String.join("\n",
      "import sys, json, ast",
      "def _grpo4j_main():",
      "    d = json.loads(sys.stdin.read())",
      "    nonce, program, tests = d['nonce'], d['program'], d['tests']",
      "    del d",
      "    g = {'__name__': '__main__'}",
      "    try:",
      "        exec(compile(program, 'solution.py', 'exec'), g)",
      "    except BaseException:",
      "        print(nonce, 0, max(1, tests.count('assert')), flush=True)",
      "        return",
      "    tree = ast.parse(tests)",
      "    total = passed = 0",
      "    broken = False",
      "    for node in tree.body:",
      "        is_assert = isinstance(node, ast.Assert)",
      "        total += is_assert",
      "        if broken:",
      "            continue",
      "        try:",
      "            exec(compile(ast.Module(body=[node], type_ignores=[]), 'tests.py', 'exec'), g)",
      "            passed += is_assert",
      "        except BaseException:",
      "            if not is_assert:",
      "                broken = True",
      "    print(nonce, passed, total, flush=True)",
      "_grpo4j_main()");

  static Object tryJson(String s) {
    try {
      return JSON.readValue(s, Object.class);
    } catch (IOException e) {
      return s;
    }
  }

  @SuppressWarnings("unchecked")
  static List<String[]> ioPairs(Object tests) {
    if (tests instanceof List<?> l && !l.isEmpty() && l.get(0) instanceof Map) {
      List<String[]> out = new ArrayList<>();
      for (Object o : l) {
        Map<String, Object> m = (Map<String, Object>) o;
        out.add(new String[] {str(m.get("input")), str(m.get("output"))});
      }
      return out;
    }
    if (tests instanceof Map<?, ?> m && m.containsKey("inputs") && m.containsKey("outputs")) {
      List<Object> in = (List<Object>) m.get("inputs");
      List<Object> outs = (List<Object>) m.get("outputs");
      List<String[]> out = new ArrayList<>();
      for (int i = 0; i < Math.min(in.size(), outs.size()); i++) {
        out.add(new String[] {str(in.get(i)), str(outs.get(i))});
      }
      return out;
    }
    return null;
  }

  private static String str(Object o) {
    return o == null ? "" : o.toString();
  }

  /** Line by line, trailing whitespace and trailing blank lines ignored. */
  static boolean sameOutput(String got, String want) {
    return normalizeOutput(got).equals(normalizeOutput(want));
  }

  private static List<String> normalizeOutput(String s) {
    List<String> lines = new ArrayList<>();
    for (String line : s.replace("\r\n", "\n").split("\n", -1)) {
      lines.add(line.stripTrailing());
    }
    while (!lines.isEmpty() && lines.get(lines.size() - 1).isEmpty()) {
      lines.remove(lines.size() - 1);
    }
    return lines;
  }

  /** The last fenced block tagged with the language (or an alias, or untagged); null when there is none. */
  static String lastCodeBlock(String text, String language) {
    Matcher m = Pattern.compile("```([A-Za-z0-9_+-]*)[^\\n]*\\n(.*?)```", Pattern.DOTALL).matcher(text);
    String last = null;
    while (m.find()) {
      String tag = m.group(1).toLowerCase();
      if (tag.isEmpty() || tag.equals(language) || (language.equals("python") && (tag.equals("py")
          || tag.equals("python3")))) {
        last = m.group(2);
      }
    }
    return last;
  }

  private static void deleteTree(Path root) {
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        p.toFile().setWritable(true);
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("could not remove sandbox folder " + root, e);
    }
  }

  @Override
  public void close() {
    pool.shutdownNow();
  }

  /** Finds a python3 every uid can run (pyenv shims under /root are not readable by the sandbox uid). */
  static String findPython() {
    for (String p : new String[] {"/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"}) {
      if (Files.isExecutable(Path.of(p))) {
        return p;
      }
    }
    return "python3";
  }

  public static final class Provider implements RewardFunctionProvider {
    @Override
    public String name() {
      return "code_tests";
    }

    @Override
    public String description() {
      return "fraction of the row's tests the last fenced code block passes, run sandboxed";
    }

    @Override
    public List<ParamSpec> params() {
      return List.of(
          ParamSpec.of("language", "string", "python", "fence tag of the code block (python only runs python)"),
          ParamSpec.of("python", "string", "auto", "interpreter path; auto = /usr/bin/python3 if present"),
          ParamSpec.of("test_field", "string", "tests", "row field with the tests"),
          ParamSpec.of("all_or_nothing", "boolean", false, "1 only if every test passes"),
          ParamSpec.of("timeout_s", "double", 5.0, "wall-clock limit per test run"),
          ParamSpec.of("cpu_s", "int", 0, "CPU-time limit per run; 0 = ceil(timeout_s)"),
          ParamSpec.of("memory_mb", "int", 512, "address-space limit"),
          ParamSpec.of("max_processes", "int", 32, "processes and threads the program may have"),
          ParamSpec.of("max_output_kb", "int", 1024, "stdout/stderr cap; past it the run fails"),
          ParamSpec.of("max_file_kb", "int", 10240, "largest file the program may write"),
          ParamSpec.of("parallelism", "int", 0, "programs run at once; 0 = number of cores"),
          ParamSpec.of("sandbox", "string", "auto", "auto: bubblewrap, else (as root) an unshare + chroot jail with the"
              + " same guarantees; refuses rather than isolating less. bwrap: namespaces (no network, private pids,"
              + " read-only system, private /tmp, only the work folder writable, nothing else of the file system"
              + " visible) + unprivileged uid + rlimits. rlimit-only: as root the jail (same guarantees); as another"
              + " user rlimits and file permissions only (no file system or network isolation). none: nothing"),
          ParamSpec.of("allow_unsandboxed", "boolean", false, "permit sandbox: none (or auto with no isolation)"));
    }

    @Override
    public RewardFunction create(Params p) {
      return create(p, System.getenv("PATH"));
    }

    /** As {@link #create(Params)}, with the sandbox's helper programs looked up on {@code searchPath}. */
    RewardFunction create(Params p, String searchPath) {
      String language = p.getString("language");
      if (!language.equals("python")) {
        throw new RewardConfigException("reward \"code_tests\": param \"language\" = \"" + language
            + "\": only python programs can be run");
      }
      double timeout = p.doubleIn("timeout_s", 0.1, 3600);
      int cpu = p.getInt("cpu_s") > 0 ? p.getInt("cpu_s") : (int) Math.ceil(timeout);
      SandboxLimits limits = new SandboxLimits(timeout, cpu, p.intIn("memory_mb", 16, 1 << 20),
          p.intIn("max_processes", 1, 100000), p.intIn("max_output_kb", 1, 1 << 20), p.intIn("max_file_kb", 1, 1 << 24));
      int par = p.getInt("parallelism") > 0 ? p.getInt("parallelism") : Runtime.getRuntime().availableProcessors();
      Sandbox sb;
      try {
        sb = Sandbox.detect(p.getString("sandbox"), p.getBoolean("allow_unsandboxed"), searchPath);
      } catch (IllegalStateException | IllegalArgumentException e) {
        throw new RewardConfigException("reward \"code_tests\": " + e.getMessage());
      }
      System.err.println("code_tests: sandbox = " + sb.describe());
      String python = p.getString("python").equals("auto") ? findPython() : p.getString("python");
      return new CodeTestReward(sb, limits, language, python, p.getString("test_field"), p.getBoolean("all_or_nothing"),
          par);
    }
  }
}
