"""Run generated code and its tests inside an operating-system sandbox (bubblewrap).

Every run gets, from the kernel (``bwrap``, Debian/Ubuntu package ``bubblewrap``):

- a fresh mount namespace holding only the Python runtime read-only (the interpreter's
  prefix, the virtual environment and site-packages of the calling interpreter, and the
  shared libraries in ``/usr/lib*``) plus the run's own work dir ``/sandbox``: a tmpfs
  capped at ``SandboxLimits.disk_mb`` (writes past it fail with ``ENOSPC``) that vanishes
  with the run. No ``/etc``, ``/home``, ``/root``, ``/tmp`` or project files of the host;
- its own pid namespace with a fresh ``/proc`` (no host process is visible or can be
  signalled; when the run ends, the kernel kills every process left in it), and its own
  network (no interface but a downed loopback), IPC, UTS and cgroup namespaces; a new
  session (``setsid``, no terminal);
- an unprivileged uid: as root on the host, bwrap sets the namespaces up without a user
  namespace and the code drops to a uid/gid of its own (``SANDBOX_UID_BASE`` + a per-run
  offset, no groups, no capabilities) before anything of the caller runs; as another user,
  or where the kernel refuses the former, a user namespace maps uid 65534 (``nobody``);
- kernel resource limits (``setrlimit`` before ``exec``): CPU seconds (``RLIMIT_CPU``),
  address space (``RLIMIT_AS``), size of a written file (``RLIMIT_FSIZE``), open files, no
  core dumps, and processes (``RLIMIT_NPROC``) in the real-uid mode; the kernel counts it per
  real uid, so it is not set in the user-namespace mode (where the pid namespace and the
  wall-clock kill bound a fork bomb);
- a wall-clock limit after which the whole namespace is killed (bwrap runs in its own
  process group with ``--die-with-parent``; SIGKILL to the group kills bwrap, and with it
  the namespace's init and everything under it).

Before any code of the caller runs, a seccomp filter (:mod:`constrained.tasks.seccomp`) refuses new
namespaces and mounts, so a nested user namespace cannot mount an uncapped tmpfs.

A second, cheap layer inside the interpreter: a ``sys.addaudithook`` hook refuses process
creation, signals, sockets, ``ctypes`` and writes outside the work dir. Python's own
documentation says audit hooks are no sandbox; it is there only to turn the common
mistakes into readable messages.

Where bubblewrap is missing or the kernel refuses its namespaces, running code is refused
with :class:`~constrained.errors.SandboxUnavailable`, unless the environment variable
``CONSTRAINED_UNSAFE_SANDBOX=1`` opts into the weaker mode (a plain subprocess with the
rlimits, ``unshare -n`` where allowed and the audit hook, which code can switch off);
that mode is announced on stderr at every run. It is never chosen silently.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from constrained.errors import ConfigError, SandboxUnavailable

from .seccomp import INSTALL as SECCOMP

#: environment variable that opts into the weaker, in-process (audit hook) sandbox
UNSAFE_ENV = "CONSTRAINED_UNSAFE_SANDBOX"
#: the run's work dir inside the sandbox
WORKDIR = "/sandbox"
#: first uid/gid used for sandboxed code when the host runs as root (per run: base + pid % 10000)
SANDBOX_UID_BASE = 200000

GUARD = r'''
def _install_guard():
    import os, sys
    root = os.path.realpath(os.getcwd())
    ok_paths = ("/dev/null",)
    write = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    proc = frozenset({"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                      "subprocess.Popen", "pty.spawn", "os.startfile", "os.killpg", "os.setuid", "os.setgid",
                      "os.setreuid", "os.setregid", "os.setresuid", "os.setresgid"})
    fs = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
                    "os.symlink", "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.mkfifo",
                    "os.mknod", "shutil.rmtree", "shutil.copyfile", "shutil.copymode", "shutil.copystat",
                    "shutil.chown", "shutil.move", "os.setxattr", "os.removexattr"})
    realpath, fsdecode, sep, getpid, pathlike = os.path.realpath, os.fsdecode, os.sep, os.getpid, os.PathLike

    def refuse(what):
        raise PermissionError("sandbox: " + what + " is refused")

    def inside(path):
        if isinstance(path, int) or path is None:
            return True
        try:
            p = realpath(fsdecode(path))
        except Exception:
            return False
        return p == root or p.startswith(root + sep) or p in ok_paths

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write)
            if writing and not inside(path):
                refuse("writing " + repr(path) + " outside the sandbox directory")
        elif event in fs:
            for a in args[:2]:
                if isinstance(a, (str, bytes, pathlike)) and not inside(a):
                    refuse(event + " on " + repr(a) + " outside the sandbox directory")
        elif event in proc:
            refuse("creating or controlling processes (" + event + ")")
        elif event == "os.kill" and args and args[0] not in (0, getpid()):
            refuse("signalling other processes")
        elif event.startswith("socket.") and event != "socket.gethostname":
            refuse("network access (" + event + ")")
        elif event.startswith("ctypes."):
            refuse("ctypes (" + event + ")")

    sys.addaudithook(hook)
    import _posixsubprocess

    def no_fork_exec(*a, **k):
        refuse("creating processes (fork_exec)")
    _posixsubprocess.fork_exec = no_fork_exec
    return root

'''

RUNNER = r'''
import os, sys
sys.path.insert(0, _ROOT)
MODE, MODULE, TESTS = {mode!r}, {module!r}, os.path.join(_ROOT, {tests!r})
if MODE == "pytest":
    import pytest
    sys.exit(pytest.main(["-q", "-x", "-p", "no:cacheprovider", "--rootdir", _ROOT, "-c",
                          os.path.join(_ROOT, "pytest.ini"),
                          "--tb=short", TESTS]))
import importlib, traceback
try:
    mod = importlib.import_module(MODULE)
    ns = dict(vars(mod))
    code = open(TESTS, encoding="utf-8").read()
    exec(compile(code, TESTS, "exec"), ns)
except BaseException as e:
    traceback.print_exc()
    sys.exit(1)
'''

#: last bwrap options: the sandbox's root and /dev (tmpfs that bwrap makes, owned by the sandbox's uid
#: under a user namespace) become read-only, so only the size-capped work dir can be written
SEAL = ["--remount-ro", "/", "--remount-ro", "/dev"]
#: run first inside the namespace when bwrap ran as root: drop to the sandbox uid, then exec the run
DROP = ("import os, sys; u = int(sys.argv[1]); os.setgroups([]); os.setresgid(u, u, u); "
        "os.setresuid(u, u, u); os.execv(sys.argv[2], sys.argv[2:])")


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run: seconds, megabytes, counts."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 1024
    file_mb: int = 16
    disk_mb: int = 64
    max_processes: int = 16
    max_open_files: int = 256
    network: bool = False

    def __post_init__(self) -> None:
        if self.wall_seconds <= 0 or self.cpu_seconds < 1:
            raise ConfigError(f"sandbox time limits must be positive, got wall {self.wall_seconds}, "
                              f"cpu {self.cpu_seconds}")
        if self.memory_mb < 64:
            raise ConfigError(f"sandbox memory limit must be >= 64 MB, got {self.memory_mb}")
        if self.disk_mb < 1 or self.file_mb < 1 or self.max_processes < 1:
            raise ConfigError(f"sandbox disk, file and process limits must be >= 1, got disk {self.disk_mb}, "
                              f"file {self.file_mb}, processes {self.max_processes}")


@dataclass
class SandboxResult:
    """``ok``: the code exited 0 within its limits. ``reason`` says why not in a line;
    ``mode``: ``"bwrap"`` or ``"unsafe-inprocess"``."""

    ok: bool
    returncode: int | None
    stdout: str
    stderr: str
    reason: str
    seconds: float
    timed_out: bool = False
    mode: str = "bwrap"


# --- what the sandbox can see ---------------------------------------------------------------
def runtime_paths() -> list[str]:
    """Host folders that make up the Python runtime, bound read-only at the same paths: the
    interpreter's prefixes (with a virtual environment, both) and its site-packages."""
    paths = {sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix}
    paths.update(site.getsitepackages())
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    real = {os.path.realpath(p) for p in paths if os.path.isdir(p)} | {p for p in paths if os.path.isdir(p)}
    out: list[str] = []
    for p in sorted(real, key=len):  # drop paths inside one already bound
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return out


def _library_args() -> list[str]:
    """The shared libraries the interpreter and its extension modules link against."""
    args: list[str] = []
    for d in ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/lib32", "/usr/lib32"):
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    return args


def _dir_args(paths: list[str]) -> list[str]:
    """World-readable parent folders for each bind (bwrap makes missing ones 0700)."""
    made: set[str] = {"/"}
    args: list[str] = []
    for p in paths:
        parts = Path(p).parts
        for i in range(2, len(parts)):
            d = str(Path(*parts[:i]))
            if d not in made:
                made.add(d)
                args += ["--perms", "0755", "--dir", d]
    return args


def _bwrap_base(mode: str, limits: SandboxLimits) -> list[str]:
    exe = shutil.which("bwrap")
    assert exe is not None
    binds = runtime_paths()
    args = [exe, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--clearenv"]
    if not limits.network:
        args.append("--unshare-net")
    if mode == "bwrap-userns":
        args += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
        if "--disable-userns" in _bwrap_help():  # bubblewrap >= 0.8; the seccomp filter blocks it too
            args.append("--disable-userns")
    else:  # bwrap-root: namespaces set up as root, the code drops to `uid` before anything else runs
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    args += _dir_args(["/usr/lib"] + binds) + _library_args()
    for p in binds:
        args += ["--ro-bind", p, p]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(limits.disk_mb * 1024 * 1024), "--perms", "0777", "--tmpfs", WORKDIR,
             "--chdir", WORKDIR]
    for k, v in _env(WORKDIR).items():
        args += ["--setenv", k, v]
    return args


def _env(root: str) -> dict[str, str]:
    return {"PATH": os.defpath, "LANG": "C.UTF-8", "HOME": root, "TMPDIR": root,
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}


def _inner(mode: str, uid: int, argv: list[str]) -> list[str]:
    if mode == "bwrap-root":
        return [sys.executable, "-I", "-S", "-c", DROP, str(uid), *argv]
    return argv


@lru_cache(maxsize=1)
def _bwrap_help() -> str:
    try:
        p = subprocess.run([shutil.which("bwrap") or "bwrap", "--help"], capture_output=True, text=True, timeout=10)
        return p.stdout + p.stderr
    except (OSError, subprocess.SubprocessError):
        return ""


#: why each sandbox mode failed its probe (bwrap's own words), for the refusal message
PROBE_ERRORS: dict[str, str] = {}


@lru_cache(maxsize=1)
def os_sandbox() -> str | None:
    """The OS sandbox that works here: ``"bwrap-root"`` (root on the host: namespaces without a
    user namespace, the code drops to an unprivileged uid), ``"bwrap-userns"`` (a user namespace
    mapping uid 65534), or None (no ``bwrap`` on the PATH, or the kernel refuses both)."""
    if shutil.which("bwrap") is None:
        return None
    if "--size" not in _bwrap_help():
        PROBE_ERRORS["bwrap"] = "this bwrap has no --size option (bubblewrap 0.7 or newer is needed for the disk cap)"
        return None
    limits = SandboxLimits()
    probe = f"import os; assert os.getuid() != 0 and os.listdir('/proc') and os.getcwd() == {WORKDIR!r}"
    modes = (["bwrap-root"] if os.geteuid() == 0 else []) + ["bwrap-userns"]
    for mode in modes:
        cmd = _bwrap_base(mode, limits) + SEAL + _inner(
            mode, SANDBOX_UID_BASE, [sys.executable, "-I", "-S", "-c", probe])
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            PROBE_ERRORS[mode] = str(e)
            continue
        if p.returncode == 0:
            return mode
        PROBE_ERRORS[mode] = (p.stderr.decode(errors="replace").strip().splitlines() or [f"exit {p.returncode}"])[-1]
    return None


def unsafe_opt_in() -> bool:
    """Whether ``CONSTRAINED_UNSAFE_SANDBOX`` opts into the weaker in-process sandbox."""
    return os.environ.get(UNSAFE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def require_sandbox() -> str:
    """The sandbox mode runs will use; raises :class:`SandboxUnavailable` where no OS sandbox
    works and the weaker mode was not asked for explicitly."""
    mode = os_sandbox()
    if mode is not None:
        return mode
    if unsafe_opt_in():
        return "unsafe-inprocess"
    why = ("not installed (apt-get install bubblewrap)" if shutil.which("bwrap") is None else
           "not usable here: " + "; ".join(f"{k}: {v}" for k, v in PROBE_ERRORS.items())
           + " (see README, Security, for what containers need)")
    raise SandboxUnavailable(f"running tests needs an OS sandbox, and bubblewrap ('bwrap') is {why}; "
                             f"or set {UNSAFE_ENV}=1 to accept the weaker in-process sandbox, which code can escape")


@lru_cache(maxsize=1)
def network_namespace_available() -> bool:
    """Whether ``unshare -n`` can give a child its own (empty) network namespace here
    (used by the weaker mode only)."""
    exe = shutil.which("unshare")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _limits_fn(limits: SandboxLimits, nproc: bool = True):
    """The rlimits, set in the child between fork and exec. ``nproc=False`` leaves out
    RLIMIT_NPROC: it counts every process of the real uid, so under a user namespace of an
    ordinary user it would stop bwrap itself once that user runs that many processes."""
    def apply() -> None:
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))

    return apply


def _tail(text: str, n: int = 2000) -> str:
    return text if len(text) <= n else "..." + text[-n:]


def _reason(rc: int | None, timed_out: bool, limits: SandboxLimits, out: str, err: str) -> str:
    if timed_out:
        return f"killed after the {limits.wall_seconds:g} s wall-clock limit"
    if rc == 0:
        return "passed"
    if rc is not None and rc < 0:
        sig = -rc
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        what = {"SIGXCPU": f"the {limits.cpu_seconds} s CPU-time limit", "SIGKILL": "a resource limit",
                "SIGXFSZ": f"the {limits.file_mb} MB file-size limit", "SIGSEGV": "a crash (segfault)"}
        return f"killed by {name} ({what.get(name, 'a signal')})"
    lines = [ln for ln in (out + "\n" + err).splitlines() if ln.strip()]
    picked = [ln for ln in lines if ln.startswith(("FAILED", "ERROR", "E  "))]
    for ln in reversed(lines):
        if "Error" in ln or "Exception" in ln or "refused" in ln:
            picked.append(ln)
            break
    return " | ".join(dict.fromkeys(ln.strip() for ln in (picked or lines[-1:])))[:500] or f"exit status {rc}"


def _run_uid() -> int:
    return SANDBOX_UID_BASE + (os.getpid() * 7 + time.monotonic_ns() // 1000) % 10000


def run_python(files: dict[str, str], script: str, limits: SandboxLimits | None = None,
               guard: bool = True) -> SandboxResult:
    """Run ``script`` (Python code) in a fresh sandbox whose work dir holds ``files`` (name ->
    text, written as UTF-8, newlines untouched). ``guard=False`` leaves out the audit-hook layer
    (the attack tests use it to judge the OS layer alone). Raises :class:`SandboxUnavailable`
    where no OS sandbox works and ``CONSTRAINED_UNSAFE_SANDBOX`` is not set."""
    limits = limits or SandboxLimits()
    mode = require_sandbox()
    stage = Path(tempfile.mkdtemp(prefix="constrained-sandbox-"))
    t0 = time.perf_counter()
    fds: list[int] = []
    try:
        head = (GUARD + "_ROOT = _install_guard()\ndel _install_guard\n") if guard else (
            "import os as _os\n_ROOT = _os.path.realpath(_os.getcwd())\n")
        if mode != "unsafe-inprocess":
            head = SECCOMP + head  # first: no nested namespaces or mounts (tasks/seccomp.py)
        files = {**files, "_sandbox_run.py": head + script}
        for name in files:
            if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
                raise ConfigError(f"sandbox file name {name!r} is not a plain file name")
        argv = [sys.executable, "-I", "-B", "_sandbox_run.py"]
        if mode == "unsafe-inprocess":
            print(f"constrained: WARNING: no OS sandbox; running code in the weaker in-process sandbox "
                  f"because {UNSAFE_ENV} is set (code can escape it)", file=sys.stderr, flush=True)
            root = stage / "work"
            root.mkdir()
            for name, text in files.items():
                with open(root / name, "w", encoding="utf-8", newline="") as f:
                    f.write(text)
            cmd = argv
            if not limits.network and network_namespace_available():
                cmd = [shutil.which("unshare") or "unshare", "-n", "--", *cmd]
            cwd, env = str(root), _env(str(root))
        else:
            uid = _run_uid()
            cmd = _bwrap_base(mode, limits)
            for name, text in files.items():
                p = stage / name
                with open(p, "w", encoding="utf-8", newline="") as f:
                    f.write(text)
                fd = os.open(p, os.O_RDONLY)
                fds.append(fd)
                cmd += ["--perms", "0666", "--file", str(fd), f"{WORKDIR}/{name}"]
            cmd += [*SEAL, "--", *_inner(mode, uid, argv)]
            cwd, env = str(stage), {"PATH": os.defpath, "LANG": "C.UTF-8"}
        timed_out = False
        with open(stage / "_stdout", "wb") as so, open(stage / "_stderr", "wb") as se:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                                    start_new_session=True, close_fds=True,
                                    preexec_fn=_limits_fn(limits, nproc=mode != "bwrap-userns"),
                                    pass_fds=fds)
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        rc = None if timed_out else proc.returncode
        if rc is not None and rc > 128 and mode != "unsafe-inprocess":
            rc = 128 - rc  # bwrap reports its child's death by signal N as exit status 128 + N
        out = (stage / "_stdout").read_bytes()[-20000:].decode("utf-8", errors="replace")
        err = (stage / "_stderr").read_bytes()[-20000:].decode("utf-8", errors="replace")
        return SandboxResult(ok=rc == 0, returncode=rc, stdout=_tail(out), stderr=_tail(err),
                             reason=_reason(rc, timed_out, limits, out, err),
                             seconds=time.perf_counter() - t0, timed_out=timed_out, mode=mode)
    finally:
        for fd in fds:
            os.close(fd)
        shutil.rmtree(stage, ignore_errors=True)


def run_tests(source: str, tests: str, module: str = "solution", limits: SandboxLimits | None = None,
              guard: bool = True) -> SandboxResult:
    """Run ``tests`` against ``source`` saved as ``MODULE.py``: with pytest when the tests
    define ``test_*`` functions (they ``import MODULE``), else as statements (``assert ...``)
    executed in the module's namespace."""
    if not module.isidentifier():
        raise ConfigError(f"module name {module!r} is not a Python identifier")
    pytest_mode = "def test" in tests
    test_file = f"test_{module}.py" if pytest_mode else "_sandbox_tests.py"
    files = {f"{module}.py": source, test_file: tests, "pytest.ini": "[pytest]\n"}
    script = RUNNER.format(mode="pytest" if pytest_mode else "exec", module=module, tests=test_file)
    return run_python(files, script, limits, guard=guard)
