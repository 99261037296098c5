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
 * <p>Two ways to get the namespaces: bubblewrap, or (as root, without bubblewrap) {@code unshare} with a jail of
 * our own: a private mount namespace whose root is an empty tmpfs holding read-only binds of /usr, /bin, /lib...,
 * a private /tmp, a minimal /dev, a fresh /proc and the work folder as /sandbox, entered with chroot. Both give the
 * same guarantees (the adversarial suite runs against each); {@code auto} takes bubblewrap, else the jail, and
 * refuses to fall back to anything weaker unless {@code rlimit-only} is asked for by name (then, as a non-root
 * user who cannot make namespaces, only rlimits and file permissions stand between the program and the machine).
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
  private final boolean jail; // rlimit-only as root: the unshare + chroot jail
  private final List<String> systemMounts;
  private final Tools tools;

  /** Absolute paths of the helper programs, resolved once on a given search path. */
  record Tools(String bwrap, String prlimit, String unshare, String setpriv, String chroot) {
    static Tools on(String searchPath) {
      return new Tools(which("bwrap", searchPath), which("prlimit", searchPath), which("unshare", searchPath),
          which("setpriv", searchPath), which("chroot", searchPath + ":/usr/sbin:/sbin"));
    }

    private static String which(String name, String searchPath) {
      for (String dir : (searchPath == null ? "" : searchPath).split(":")) {
        if (!dir.isEmpty()) {
          Path p = Path.of(dir, name);
          if (Files.isExecutable(p)) {
            try {
              return p.toRealPath().toString(); // the real file: a jail mirrors /usr, not the folder of a link
            } catch (IOException e) {
              return p.toString();
            }
          }
        }
      }
      return null;
    }
  }

  private Sandbox(Isolation isolation, boolean root, boolean unshareWorks, boolean jail, Tools tools) {
    this.isolation = isolation;
    this.root = root;
    this.unshareWorks = unshareWorks;
    this.jail = jail;
    this.tools = tools;
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
      case RLIMIT_ONLY -> jail
          ? "unshare jail (no network, private pid and mount namespaces: read-only /usr, private /tmp, the work"
              + " folder the only writable place, nothing else of the file system visible) + per-slot unprivileged"
              + " uid + rlimits"
          : "rlimits" + (root ? " + per-slot unprivileged uid" : "")
              + (unshareWorks ? " + no network + private pid namespace (unshare)" : " (network NOT isolated)")
              + "; files protected by permissions only (the program can read anything its uid can, and write"
              + " where its uid may)";
      case NONE -> "NO ISOLATION (allow_unsandboxed: true)";
    };
  }

  /**
   * @param mode auto | bwrap | rlimit-only | none
   * @param allowUnsandboxed required for mode none, and for auto when nothing works
   */
  public static Sandbox detect(String mode, boolean allowUnsandboxed) {
    return detect(mode, allowUnsandboxed, System.getenv("PATH"));
  }

  /** As {@link #detect(String, boolean)}, finding bwrap, prlimit, unshare and setpriv on {@code searchPath}. */
  public static Sandbox detect(String mode, boolean allowUnsandboxed, String searchPath) {
    boolean root = isRoot();
    Tools t = Tools.on(searchPath);
    boolean bwrap = t.bwrap() != null && works(root
        ? List.of(t.bwrap(), "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true")
        : List.of(t.bwrap(), "--unshare-user", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"));
    boolean prlimit = t.prlimit() != null && works(List.of(t.prlimit(), "--nofile=64", "true"));
    boolean unshare = root && t.unshare() != null
        && works(List.of(t.unshare(), "--pid", "--fork", "--kill-child", "--net", "true"));
    boolean jail = unshare && t.setpriv() != null && t.chroot() != null && works(List.of(t.unshare(), "--mount",
        "--pid", "--fork", "--kill-child", "--net", "sh", "-c", "mount --make-rprivate / && d=$(mktemp -d) &&"
            + " mount -t tmpfs j \"$d\" && umount \"$d\" && rmdir \"$d\""));
    String m = mode.toLowerCase(Locale.ROOT);
    switch (m) {
      case "bwrap" -> {
        if (!bwrap || !prlimit) {
          throw new IllegalStateException("sandbox: bwrap requested but " + (!bwrap
              ? "bubblewrap does not work here (install the bubblewrap package; as non-root it also needs"
                  + " unprivileged user namespaces)" : "prlimit (util-linux) is missing"));
        }
        return new Sandbox(Isolation.BWRAP, root, unshare, false, t);
      }
      case "rlimit-only" -> {
        if (!prlimit) {
          throw new IllegalStateException("sandbox: rlimit-only requested but prlimit (util-linux) is missing");
        }
        return new Sandbox(Isolation.RLIMIT_ONLY, root, unshare, jail, t);
      }
      case "none" -> {
        if (!allowUnsandboxed) {
          throw new IllegalStateException("sandbox: none runs model-written code with no isolation; set"
              + " allow_unsandboxed: true to accept that");
        }
        return new Sandbox(Isolation.NONE, root, false, false, t);
      }
      case "auto" -> {
        if (bwrap && prlimit) {
          return new Sandbox(Isolation.BWRAP, root, unshare, false, t);
        }
        if (jail && prlimit) {
          return new Sandbox(Isolation.RLIMIT_ONLY, root, true, true, t);
        }
        if (allowUnsandboxed && !prlimit) {
          return new Sandbox(Isolation.NONE, root, false, false, t);
        }
        // never a silently weaker sandbox: say what is missing and how to choose
        throw new IllegalStateException("sandbox: auto found no way to isolate model-written programs here ("
            + (t.bwrap() == null ? "bubblewrap is not installed" : "bubblewrap does not work") + (root
                ? ", and unshare cannot make mount, pid and network namespaces" : ", and without root no jail of"
                    + " our own can be made") + "). Install bubblewrap (apt-get install bubblewrap), or set"
            + " sandbox: rlimit-only to accept rlimits alone (no file system or network isolation), or"
            + " sandbox: none with allow_unsandboxed: true");
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
    try {
      return runOnce(slot, workDir, command, stdin, limits);
    } finally {
      // (the jail's mounts live in its namespace and die with it; the empty mount point remains)
      cleanJails();
    }
  }

  private final java.util.Set<Path> jails = java.util.concurrent.ConcurrentHashMap.newKeySet();

  private void cleanJails() {
    for (Path p : jails) {
      try {
        Files.deleteIfExists(p);
        jails.remove(p);
      } catch (IOException e) {
        // still in use by a run of another slot: removed after that run
      }
    }
  }

  private SandboxResult runOnce(int slot, Path workDir, List<String> command, byte[] stdin, SandboxLimits limits)
      throws IOException {
    Path jailRoot = null;
    int uid = BASE_UID + slot;
    int nproc = root ? limits.maxProcesses() : userProcesses() + limits.maxProcesses();
    List<String> rlimits = List.of(tools.prlimit() != null ? tools.prlimit() : "prlimit", "--nproc=" + nproc, "--as=" + (long) limits.memoryMb() * 1024 * 1024,
        "--cpu=" + limits.cpuSeconds(), "--fsize=" + (long) limits.maxFileKb() * 1024, "--nofile=64", "--core=0");
    List<String> dropUid = root
        ? List.of(tools.setpriv() != null ? tools.setpriv() : "setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--no-new-privs")
        : List.of();
    List<String> cmd = new ArrayList<>();
    String cwd;
    switch (isolation) {
      case BWRAP -> {
        cmd.addAll(List.of(tools.bwrap(), "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
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
        if (jail) {
          jailRoot = Files.createTempDirectory("grpo4j-jail-");
          cmd.addAll(List.of(tools.unshare(), "--mount", "--pid", "--fork", "--kill-child", "--net", "sh", "-c",
              jailScript(), "grpo4j-jail", workDir.toAbsolutePath().toString(), jailRoot.toString()));
          cwd = null;
        } else {
          if (unshareWorks) {
            cmd.addAll(List.of(tools.unshare(), "--pid", "--fork", "--kill-child", "--net"));
          }
          cwd = workDir.toString();
        }
        cmd.addAll(rlimits);
        cmd.addAll(dropUid);
      }
      default -> cwd = workDir.toString();
    }
    cmd.addAll(command);
    if (jailRoot != null) {
      jails.add(jailRoot);
    }
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
    pb.environment().put("HOME", jail ? "/sandbox" : workDir.toString());
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

  /**
   * Run by root in fresh mount, pid and network namespaces: builds the jail on an empty tmpfs ($2), read-only system
   * folders, a private /tmp and /dev, a fresh /proc, the work folder ($1) as /sandbox, then chroots into it and
   * runs the rest of the arguments (prlimit, setpriv, the program) in /sandbox.
   */
  private String jailScript() {
    StringBuilder sb = new StringBuilder("set -e\nW=\"$1\"; R=\"$2\"; shift 2\n"
        + "mount --make-rprivate /\n"
        + "mount -t tmpfs -o size=16m,mode=0755 grpo4j-jail \"$R\"\n");
    for (String d : new String[] {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc/alternatives"}) {
      Path p = Path.of(d);
      try {
        if (Files.isSymbolicLink(p)) {
          sb.append("mkdir -p \"$R").append(p.getParent()).append("\"; ln -s '")
              .append(Files.readSymbolicLink(p)).append("' \"$R").append(d).append("\"\n");
        } else if (Files.isDirectory(p)) {
          sb.append("mkdir -p \"$R").append(d).append("\"; mount --rbind ").append(d).append(" \"$R").append(d)
              .append("\"; mount -o remount,bind,ro \"$R").append(d).append("\"\n");
        }
      } catch (IOException e) {
        // not there: nothing to mirror
      }
    }
    for (String f : new String[] {"/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group"}) {
      if (Files.isRegularFile(Path.of(f))) {
        sb.append("mkdir -p \"$R/etc\"; touch \"$R").append(f).append("\"; mount --bind ").append(f)
            .append(" \"$R").append(f).append("\"; mount -o remount,bind,ro \"$R").append(f).append("\"\n");
      }
    }
    sb.append("mkdir -p \"$R/dev\" \"$R/proc\" \"$R/tmp\" \"$R/sandbox\"\n"
        + "for n in null zero full random urandom; do touch \"$R/dev/$n\"; mount --bind /dev/$n \"$R/dev/$n\"; done\n"
        + "mount -t proc proc \"$R/proc\"\n"
        + "mount -t tmpfs -o size=64m,mode=1777 grpo4j-tmp \"$R/tmp\"\n"
        + "mount --bind \"$W\" \"$R/sandbox\"\n"
        + "mount -o remount,ro,bind \"$R\"\n"
        + "exec " + tools.chroot() + " \"$R\" /bin/sh -c 'cd /sandbox && exec \"$@\"' grpo4j-run \"$@\"\n");
    return sb.toString();
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
