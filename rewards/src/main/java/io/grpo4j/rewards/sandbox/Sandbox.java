package io.grpo4j.rewards.sandbox;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs untrusted programs (model-written code) so that they cannot hurt the trainer or the machine: a fresh work
 * folder as the only writable place, no network, a private process namespace, CPU / memory / process / file-size
 * rlimits under an unprivileged uid, a wall-clock limit that kills the whole process tree, and capped output.
 *
 * <p>Root ignores RLIMIT_NPROC, so as root each parallel slot runs under its own unused uid ({@code 61000 + slot})
 * and the process limit holds per slot. As an ordinary user the uid cannot change; bubblewrap then uses a user
 * namespace and the process limit counts the user's existing processes too.
 */
public final class Sandbox {
  public static final int BASE_UID = 61000;
  private final Isolation isolation;
  private final boolean root;
  private final boolean unshareWorks; // rlimit-only: unshare --pid --net available
  private final List<String> systemMounts;

  private Sandbox(Isolation isolation, boolean root, boolean unshareWorks) {
    this.isolation = isolation;
    this.root = root;
    this.unshareWorks = unshareWorks;
    this.systemMounts = systemMounts();
  }

  public Isolation isolation() {
    return isolation;
  }

  /** One line for the log: what protects the machine. */
  public String describe() {
    return switch (isolation) {
      case BWRAP -> "bwrap (no network, private pid/ipc/uts, read-only /usr, private /tmp)"
          + (root ? " + per-slot unprivileged uid" : " + user namespace") + " + rlimits";
      case RLIMIT_ONLY -> "rlimits" + (root ? " + per-slot unprivileged uid" : "")
          + (unshareWorks ? " + no network + private pid namespace (unshare)" : " (network NOT isolated)")
          + "; files protected by permissions only";
      case NONE -> "NO ISOLATION (allow_unsandboxed: true)";
    };
  }

  /**
   * @param mode auto | bwrap | rlimit-only | none
   * @param allowUnsandboxed required for mode none, and for auto when nothing works
   */
  public static Sandbox detect(String mode, boolean allowUnsandboxed) {
    boolean root = isRoot();
    boolean bwrap = works(root ? List.of("bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true")
        : List.of("bwrap", "--unshare-user", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"));
    boolean prlimit = works(List.of("prlimit", "--nofile=64", "true"));
    boolean unshare = root && works(List.of("unshare", "--pid", "--fork", "--kill-child", "--net", "true"));
    String m = mode.toLowerCase(Locale.ROOT);
    switch (m) {
      case "bwrap" -> {
        if (!bwrap || !prlimit) {
          throw new IllegalStateException("sandbox: bwrap requested but " + (!bwrap
              ? "bubblewrap does not work here (install the bubblewrap package; as non-root it also needs"
                  + " unprivileged user namespaces)" : "prlimit (util-linux) is missing"));
        }
        return new Sandbox(Isolation.BWRAP, root, unshare);
      }
      case "rlimit-only" -> {
        if (!prlimit) {
          throw new IllegalStateException("sandbox: rlimit-only requested but prlimit (util-linux) is missing");
        }
        return new Sandbox(Isolation.RLIMIT_ONLY, root, unshare);
      }
      case "none" -> {
        if (!allowUnsandboxed) {
          throw new IllegalStateException("sandbox: none runs model-written code with no isolation; set"
              + " allow_unsandboxed: true to accept that");
        }
        return new Sandbox(Isolation.NONE, root, false);
      }
      case "auto" -> {
        if (bwrap && prlimit) {
          return new Sandbox(Isolation.BWRAP, root, unshare);
        }
        if (prlimit) {
          return new Sandbox(Isolation.RLIMIT_ONLY, root, unshare);
        }
        if (allowUnsandboxed) {
          return new Sandbox(Isolation.NONE, root, false);
        }
        throw new IllegalStateException("sandbox: neither bubblewrap nor prlimit works on this machine; install"
            + " bubblewrap and util-linux, or set allow_unsandboxed: true to run model code without isolation");
      }
      default -> throw new IllegalArgumentException("sandbox: mode \"" + mode
          + "\" is not one of auto | bwrap | rlimit-only | none");
    }
  }

  static boolean isRoot() {
    try {
      return ((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid")) == 0;
    } catch (IOException | RuntimeException | Error e) {
      return "root".equals(System.getProperty("user.name"));
    }
  }

  private static boolean works(List<String> cmd) {
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
          .start();
      if (!p.waitFor(10, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        return false;
      }
      return p.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  // Merged-/usr systems have /bin -> usr/bin etc.; others have real folders. Mirror whichever this one has.
  private static List<String> systemMounts() {
    List<String> args = new ArrayList<>(List.of("--ro-bind", "/usr", "/usr"));
    for (String d : new String[] {"/bin", "/sbin", "/lib", "/lib64", "/lib32"}) {
      Path p = Path.of(d);
      try {
        if (Files.isSymbolicLink(p)) {
          args.addAll(List.of("--symlink", Files.readSymbolicLink(p).toString(), d));
        } else if (Files.isDirectory(p)) {
          args.addAll(List.of("--ro-bind", d, d));
        }
      } catch (IOException e) {
        // not there: nothing to mirror
      }
    }
    for (String f : new String[] {"/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime"}) {
      if (Files.exists(Path.of(f))) {
        args.addAll(List.of("--ro-bind", f, f));
      }
    }
    return args;
  }

  /** Count of processes this (non-root) user already runs: RLIMIT_NPROC counts them too. */
  private static int userProcesses() {
    long uid;
    try {
      uid = ((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid"));
    } catch (IOException | RuntimeException e) {
      return 256;
    }
    int n = 0;
    try (var s = Files.list(Path.of("/proc"))) {
      for (Path p : s.toList()) {
        if (p.getFileName().toString().matches("\\d+")) {
          try {
            if (((Integer) Files.getAttribute(p, "unix:uid")) == uid) {
              n++;
            }
          } catch (IOException | RuntimeException e) {
            // raced with an exiting process
          }
        }
      }
    } catch (IOException e) {
      return 256;
    }
    return n;
  }

  /**
   * Runs {@code command} with {@code workDir} as its only writable folder (seen as /sandbox under bwrap).
   *
   * @param slot which parallel slot (picks the uid as root); 0 .. parallelism - 1
   */
  public SandboxResult run(int slot, Path workDir, List<String> command, byte[] stdin, SandboxLimits limits)
      throws IOException {
    int uid = BASE_UID + slot;
    int nproc = root ? limits.maxProcesses() : userProcesses() + limits.maxProcesses();
    List<String> rlimits = List.of("prlimit", "--nproc=" + nproc, "--as=" + (long) limits.memoryMb() * 1024 * 1024,
        "--cpu=" + limits.cpuSeconds(), "--fsize=" + (long) limits.maxFileKb() * 1024, "--nofile=64", "--core=0");
    List<String> dropUid = root
        ? List.of("setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--no-new-privs")
        : List.of();
    List<String> cmd = new ArrayList<>();
    String cwd;
    switch (isolation) {
      case BWRAP -> {
        cmd.addAll(List.of("bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session"));
        if (!root) {
          cmd.add("--unshare-user");
        }
        cmd.addAll(systemMounts);
        cmd.addAll(List.of("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind",
            workDir.toAbsolutePath().toString(), "/sandbox", "--chdir", "/sandbox", "--clearenv",
            "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/sandbox",
            "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--"));
        cmd.addAll(rlimits);
        cmd.addAll(dropUid);
        cwd = null;
      }
      case RLIMIT_ONLY -> {
        if (unshareWorks) {
          cmd.addAll(List.of("unshare", "--pid", "--fork", "--kill-child", "--net"));
        }
        cmd.addAll(rlimits);
        cmd.addAll(dropUid);
        cwd = workDir.toString();
      }
      default -> cwd = workDir.toString();
    }
    cmd.addAll(command);
    if (root && isolation != Isolation.NONE) {
      // the unprivileged uid must be able to write its work folder
      workDir.toFile().setWritable(true, false);
      workDir.toFile().setExecutable(true, false);
      workDir.toFile().setReadable(true, false);
    }
    ProcessBuilder pb = new ProcessBuilder(cmd);
    if (cwd != null) {
      pb.directory(Path.of(cwd).toFile());
    }
    pb.environment().clear();
    pb.environment().put("PATH", "/usr/local/bin:/usr/bin:/bin");
    pb.environment().put("HOME", workDir.toString());
    pb.environment().put("LANG", "C.UTF-8");
    pb.environment().put("PYTHONDONTWRITEBYTECODE", "1");
    long t0 = System.nanoTime();
    Process p = pb.start();
    AtomicBoolean exceeded = new AtomicBoolean();
    int cap = limits.maxOutputKb() * 1024;
    CappedReader out = new CappedReader(p.getInputStream(), cap, exceeded, p);
    CappedReader err = new CappedReader(p.getErrorStream(), cap, exceeded, p);
    out.start();
    err.start();
    Thread feeder = new Thread(() -> {
      try (OutputStream os = p.getOutputStream()) {
        if (stdin != null) {
          os.write(stdin);
        }
      } catch (IOException e) {
        // the program closed stdin or died: nothing to feed
      }
    }, "sandbox-stdin");
    feeder.setDaemon(true);
    feeder.start();
    boolean finished;
    try {
      finished = p.waitFor((long) (limits.wallSeconds() * 1000), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      killTree(p);
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while running a sandboxed program", e);
    }
    if (!finished || exceeded.get()) {
      killTree(p);
    }
    try {
      p.waitFor(2, TimeUnit.SECONDS);
      out.join(1000);
      err.join(1000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    killTree(p); // anything left behind (a daemonised child outside a pid namespace)
    long ms = (System.nanoTime() - t0) / 1_000_000;
    int code = finished && !exceeded.get() ? p.exitValue() : -1;
    return new SandboxResult(code, out.text(), err.text(), !finished, exceeded.get(), ms);
  }

  private static void killTree(Process p) {
    p.descendants().forEach(ProcessHandle::destroyForcibly);
    p.destroyForcibly();
  }

  /** Reads a stream up to a cap; past it, flags the run and kills the process so it cannot keep writing. */
  private static final class CappedReader extends Thread {
    private final InputStream in;
    private final int cap;
    private final AtomicBoolean exceeded;
    private final Process process;
    private final ByteArrayOutputStream buf = new ByteArrayOutputStream();

    CappedReader(InputStream in, int cap, AtomicBoolean exceeded, Process process) {
      super("sandbox-output");
      setDaemon(true);
      this.in = in;
      this.cap = cap;
      this.exceeded = exceeded;
      this.process = process;
    }

    @Override
    public void run() {
      byte[] b = new byte[8192];
      try {
        int n;
        while ((n = in.read(b)) > 0) {
          int room = cap - buf.size();
          if (n > room) {
            buf.write(b, 0, Math.max(0, room));
            exceeded.set(true);
            killTree(process);
            return;
          }
          buf.write(b, 0, n);
        }
      } catch (IOException e) {
        // stream closed because the process was killed
      }
    }

    synchronized String text() {
      return buf.toString(StandardCharsets.UTF_8);
    }
  }
}
