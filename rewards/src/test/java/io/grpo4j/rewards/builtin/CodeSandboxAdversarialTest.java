package io.grpo4j.rewards.builtin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardFunction;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Model-written programs that try to hurt the trainer or the machine, against every isolation the sandbox offers
 * (the nested classes): bubblewrap, the unshare jail of {@code rlimit-only} as root, and {@code auto} with
 * bubblewrap absent from the search path. Each program must be contained: reward 0, this JVM unharmed, no file
 * written outside its folder, no network, no secret environment variable seen, no process or temp folder left
 * behind, finished within its time limit plus one second.
 */
class CodeSandboxAdversarialTest {
  static final double LIMIT_S = 2.0;
  static CodeTestReward reward;

  static CodeTestReward make(String mode, String searchPath) {
    return (CodeTestReward) new CodeTestReward.Provider().create(Params.validate("code_tests",
        new CodeTestReward.Provider().params(), Map.of("timeout_s", LIMIT_S, "parallelism", 2, "sandbox", mode)),
        searchPath);
  }

  /** A search path with links to the sandbox's helpers but no bwrap: "bubblewrap is not installed". */
  static String pathWithoutBubblewrap() throws IOException {
    Path dir = Files.createTempDirectory("grpo4j-no-bwrap-");
    dir.toFile().deleteOnExit();
    for (String tool : new String[] {"prlimit", "unshare", "setpriv"}) {
      for (String d : System.getenv("PATH").split(":")) {
        Path p = Path.of(d, tool);
        if (Files.isExecutable(p)) {
          Files.createSymbolicLink(dir.resolve(tool), p);
          dir.resolve(tool).toFile().deleteOnExit();
          break;
        }
      }
    }
    return dir.toString();
  }

  static Completion program(String code, Object tests) {
    return Completion.of("Here is my solution:\n```python\n" + code + "\n```", Map.of("tests", tests));
  }

  static List<Map<String, Object>> io(String input, String output) {
    return List.of(Map.of("input", input, "output", output));
  }

  /** Runs one program and checks the containment guarantees common to every case. */
  static double contained(String code, Object tests) throws Exception {
    long before = sandboxDirs();
    long t0 = System.nanoTime();
    double r = reward.score(List.of(program(code, tests))).get(0);
    double secs = (System.nanoTime() - t0) / 1e9;
    assertTrue(secs < LIMIT_S * ((tests instanceof List<?> l) ? l.size() : 1) + 1.0, "took " + secs + " s");
    assertEquals(before, sandboxDirs(), "a sandbox temp folder was left behind");
    assertTrue(noSandboxProcesses(), "a sandboxed process survived its run");
    return r;
  }

  static long sandboxDirs() throws IOException {
    try (Stream<Path> s = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
      return s.filter(p -> p.getFileName().toString().startsWith("grpo4j-sandbox-")
          || p.getFileName().toString().startsWith("grpo4j-jail-")).count();
    }
  }

  static boolean noSandboxProcesses() throws InterruptedException {
    for (int i = 0; i < 20; i++) {
      boolean any = ProcessHandle.allProcesses().anyMatch(p -> sandboxUid(p.pid()));
      if (!any) {
        return true;
      }
      Thread.sleep(50);
    }
    return false;
  }

  /**
   * A live process of a sandbox uid (ProcessHandle cannot name a uid without a passwd entry; /proc can). Zombies do
   * not count: they hold no memory or CPU and wait only for the host's init to reap them.
   */
  static boolean sandboxUid(long pid) {
    try {
      int uid = (Integer) Files.getAttribute(Path.of("/proc/" + pid), "unix:uid");
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      boolean zombie = stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
      return !zombie && uid >= io.grpo4j.rewards.sandbox.Sandbox.BASE_UID
          && uid < io.grpo4j.rewards.sandbox.Sandbox.BASE_UID + 64;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  static String q(String s) {
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'";
  }

  /** bubblewrap (installed by the test set-up). */
  @org.junit.jupiter.api.Nested
  @org.junit.jupiter.api.TestInstance(org.junit.jupiter.api.TestInstance.Lifecycle.PER_CLASS)
  class Bubblewrap extends Containment {
    @BeforeAll
    void create() {
      reward = make("bwrap", System.getenv("PATH"));
      assertEquals(io.grpo4j.rewards.sandbox.Isolation.BWRAP, reward.sandbox().isolation());
    }
  }

  /** rlimit-only as root: the unshare + chroot jail, bubblewrap not used. */
  @org.junit.jupiter.api.Nested
  @org.junit.jupiter.api.TestInstance(org.junit.jupiter.api.TestInstance.Lifecycle.PER_CLASS)
  class RlimitOnlyJail extends Containment {
    @BeforeAll
    void create() throws IOException {
      org.junit.jupiter.api.Assumptions.assumeTrue(io.grpo4j.rewards.sandbox.SandboxTestAccess.isRoot(),
          "the jail needs root (as another user rlimit-only is rlimits alone, which this suite would fail)");
      reward = make("rlimit-only", pathWithoutBubblewrap());
      assertTrue(reward.sandbox().describe().startsWith("unshare jail"), reward.sandbox().describe());
    }
  }

  /** auto on a machine without bubblewrap, as root: the jail (what a non-root user gets is the test below). */
  @org.junit.jupiter.api.Nested
  @org.junit.jupiter.api.TestInstance(org.junit.jupiter.api.TestInstance.Lifecycle.PER_CLASS)
  class AutoWithoutBubblewrap extends Containment {
    @BeforeAll
    void create() throws IOException {
      org.junit.jupiter.api.Assumptions.assumeTrue(io.grpo4j.rewards.sandbox.SandboxTestAccess.isRoot(),
          "as another user auto without bubblewrap refuses (autoWithoutBubblewrapIsTheJailOrARefusal)");
      reward = make("auto", pathWithoutBubblewrap());
      assertTrue(reward.sandbox().describe().startsWith("unshare jail"), reward.sandbox().describe());
    }
  }

  /** Without bubblewrap auto never runs anything weaker: the jail as root, else a refusal that names the fix. */
  @org.junit.jupiter.api.Test
  void autoWithoutBubblewrapIsTheJailOrARefusal() throws IOException {
    String path = pathWithoutBubblewrap();
    if (io.grpo4j.rewards.sandbox.SandboxTestAccess.isRoot()) {
      try (CodeTestReward r = make("auto", path)) {
        assertTrue(r.sandbox().describe().startsWith("unshare jail"), r.sandbox().describe());
      }
      return;
    }
    var e = org.junit.jupiter.api.Assertions.assertThrows(io.grpo4j.rewards.RewardConfigException.class,
        () -> make("auto", path));
    assertTrue(e.getMessage().contains("Install bubblewrap") && e.getMessage().contains("rlimit-only"),
        e.getMessage());
  }

  /** The programs, run against whichever sandbox the nested class made. */
  abstract static class Containment {
    @AfterAll
    void close() {
      reward.close();
    }

  @Test
  void noProcessCheckSeesASandboxUid() throws Exception {
    Process p = new ProcessBuilder("setpriv", "--reuid=61000", "--regid=61000", "--clear-groups", "sleep", "5").start();
    try {
      Thread.sleep(300);
      assertTrue(sandboxUid(p.pid()), "the leftover-process check must be able to see sandbox uids");
    } finally {
      p.destroyForcibly().waitFor();
    }
  }

  @Test
  void correctProgramPasses() throws Exception {
    assertEquals(1.0, contained("a, b = map(int, input().split())\nprint(a + b)",
        List.of(Map.of("input", "1 2\n", "output", "3"), Map.of("input", "10 -4\n", "output", "6\n"))));
  }

  @Test
  void partialCreditIsTheFractionPassed() throws Exception {
    assertEquals(0.5, contained("n = int(input())\nprint(2 if n == 1 else 0)",
        List.of(Map.of("input", "1\n", "output", "2"), Map.of("input", "3\n", "output", "6"))), 1e-9);
  }

  @Test
  void assertStyleTestsCountEachAssert() throws Exception {
    String tests = "assert add(1, 2) == 3\nassert add(2, 2) == 4\nassert add(0, 0) == 1\n";
    assertEquals(2.0 / 3, contained("def add(a, b):\n    return a + b", tests), 1e-9);
  }

  @Test
  void rowWithoutTestsIsNotApplicableAndMissingCodeScoresZero() {
    assertNull(reward.score(List.of(Completion.of("```python\nprint(1)\n```", Map.of()))).get(0));
    assertEquals(0.0, reward.score(List.of(Completion.of("no code here", Map.of("tests", io("", "1"))))).get(0));
  }

  @Test
  void infiniteLoop() throws Exception {
    assertEquals(0.0, contained("while True:\n    pass", io("", "1")));
  }

  @Test
  void forkBomb() throws Exception {
    assertEquals(0.0, contained("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        io("", "1")));
  }

  @Test
  void allocatingEightGigabytes() throws Exception {
    assertEquals(0.0, contained("x = bytearray(8 * 1024 ** 3)\nprint(1)", io("", "1")));
  }

  @Test
  void twoHundredMegabytesOfOutput() throws Exception {
    assertEquals(0.0, contained("import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 1_000_000)",
        io("", "1")));
  }

  @Test
  void writingOutsideItsFolder() throws Exception {
    String marker = "grpo4j-escape-" + UUID.randomUUID();
    Path home = Path.of(System.getProperty("user.home")).resolve(marker);
    Path tmp = Path.of(System.getProperty("java.io.tmpdir")).resolve(marker);
    String code = "import os\n"
        + "for p in [" + q(home.toString()) + ", " + q(tmp.toString()) + ", '/tmp/" + marker + "', '../" + marker
        + "']:\n"
        + "    try:\n        open(p, 'w').write('pwned')\n    except OSError:\n        pass\n"
        + "print('done')";
    contained(code, io("", "done"));
    assertFalse(Files.exists(home), "wrote into the user's home");
    assertFalse(Files.exists(tmp), "wrote into the shared temp folder");
    assertFalse(Files.exists(Path.of("/tmp", marker)));
  }

  @Test
  void openingATcpConnectionToALocalServer() throws Exception {
    try (ServerSocket server = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
      server.setSoTimeout(100);
      AtomicBoolean accepted = new AtomicBoolean();
      Thread t = new Thread(() -> {
        long end = System.currentTimeMillis() + 6000;
        while (System.currentTimeMillis() < end && !server.isClosed()) {
          try (Socket s = server.accept()) {
            accepted.set(true);
          } catch (SocketTimeoutException e) {
            // keep listening
          } catch (IOException e) {
            return;
          }
        }
      });
      t.start();
      String code = "import socket\ns = socket.create_connection(('127.0.0.1', " + server.getLocalPort()
          + "), timeout=1)\nprint('connected')";
      assertEquals(0.0, contained(code, io("", "connected")));
      Thread.sleep(200);
      assertFalse(accepted.get(), "the sandboxed program reached a server on the host's loopback");
      server.close();
      t.join();
    }
  }

  @Test
  void leavingABackgroundChildBehind() throws Exception {
    String marker = "7" + (System.nanoTime() % 100000) + ".25";
    String code = "import subprocess, os\n"
        + "if os.fork() == 0:\n    os.setsid()\n    subprocess.Popen(['sleep', '" + marker + "'])\n    os._exit(0)\n"
        + "subprocess.Popen(['sleep', '" + marker + "'], start_new_session=True)\nprint('bye')";
    contained(code, io("", "nope"));
    Thread.sleep(300);
    assertFalse(ProcessHandle.allProcesses().anyMatch(p -> p.info().commandLine().orElse("").contains(marker)),
        "a background child survived");
  }

  @Test
  void killingItsParent() throws Exception {
    long me = ProcessHandle.current().pid();
    String code = "import os, signal\nfor pid in [os.getppid(), 1, " + me + "]:\n"
        + "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\nprint('x')";
    contained(code, io("", "y"));
    assertTrue(ProcessHandle.current().isAlive());
  }

  @Test
  void readingTheExpectedOutput() throws Exception {
    String secret = "SECRET-" + UUID.randomUUID();
    // the program hunts for the expected output anywhere it can read and prints it if found
    String code = "import os\nfound = ''\n"
        + "for root in ['.', '..', '/tmp', os.path.expanduser('~'), '/proc']:\n"
        + "    for dirpath, dirs, files in os.walk(root):\n"
        + "        if dirpath.count('/') > 4: continue\n"
        + "        for f in files:\n"
        + "            try:\n"
        + "                data = open(os.path.join(dirpath, f), errors='ignore').read(1 << 16)\n"
        + "                i = data.find('SECRET-')\n"
        + "                if i >= 0: found = data[i:i + 43]\n"
        + "            except Exception:\n                pass\n"
        + "print(found)";
    assertEquals(0.0, contained(code, io("", secret)));
  }

  @Test
  void seeingNoSecretsInItsEnvironment() throws Exception {
    // the trainer's environment (tokens, keys, paths) never reaches the program: only a fixed handful of variables
    String code = "import os\n"
        + "allowed = {'PATH', 'HOME', 'LANG', 'PYTHONDONTWRITEBYTECODE', 'PWD', 'OLDPWD', 'SHLVL', '_'}\n"
        + "extra = sorted(k for k in os.environ if k not in allowed)\n"
        + "print('clean' if not extra else extra)";
    assertEquals(1.0, contained(code, io("", "clean")));
    assertTrue(System.getenv().keySet().stream().anyMatch(k -> !k.equals("PATH") && !k.equals("HOME")),
        "this JVM has variables of its own that the program must not see");
  }

  @Test
  void pluginRewardFunctionIsARewardFunction() {
    RewardFunction f = reward;
    assertEquals("code_tests", f.name());
  }
  }
}
