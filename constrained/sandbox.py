"""A sandbox for running generated code and its tests in a subprocess.

Layers, outermost first:

- a fresh temporary working directory (deleted afterwards), a cleared environment
  (``PATH``, ``LANG``, ``HOME`` = ``TMPDIR`` = the temp dir) and ``python -I -B``
  (isolated mode: no user site, ``PYTHON*`` variables ignored, script dir not on the path);
- no network: the child runs in a new network namespace (``unshare -n``) where the OS
  allows it — it then has no interface but a downed loopback;
- kernel resource limits set with ``resource.setrlimit`` in ``preexec_fn``: CPU seconds
  (``RLIMIT_CPU``: SIGXCPU, then SIGKILL), address space (``RLIMIT_AS``: allocations fail),
  size of a written file (``RLIMIT_FSIZE``), processes (``RLIMIT_NPROC`` — the kernel does
  not apply it to root), open files, no core dumps;
- a wall-clock timeout after which the whole process group is killed (``start_new_session``
  puts the child in its own group; ``os.killpg(SIGKILL)``), also run after a normal exit so
  nothing the child left behind survives;
- inside the child, before any test or generated code runs, a ``sys.addaudithook`` hook
  (which cannot be removed) refuses: creating processes (``os.fork``, ``os.system``,
  ``os.exec*``, ``os.posix_spawn``, ``subprocess.Popen``, ``pty``), signalling other
  processes, sockets, ``ctypes``, and writing, creating, removing, renaming or changing files
  outside the temp dir. ``_posixsubprocess.fork_exec`` is replaced by a refusal as well.

What the sandbox does not do: it is not a container or a seccomp filter. The audit hooks
are the layer that refuses forks and out-of-tree writes when the host runs as root (where
``RLIMIT_NPROC`` and file permissions do not bind); interpreter-level tricks could get
around them. Run untrusted code as an unprivileged user for a second, kernel-level wall.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ConfigError

GUARD = r'''
import os as _os, sys as _sys
_ROOT = _os.path.realpath(_os.getcwd())
_OK_PATHS = ("/dev/null",)
_WRITE = _os.O_WRONLY | _os.O_RDWR | _os.O_APPEND | _os.O_CREAT | _os.O_TRUNC
_PROC = frozenset({"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                   "subprocess.Popen", "pty.spawn", "os.startfile", "os.killpg", "os.setuid", "os.setgid",
                   "os.setreuid", "os.setregid", "os.setresuid", "os.setresgid"})
_FS = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
                 "os.symlink", "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.mkfifo",
                 "os.mknod", "shutil.rmtree", "shutil.copyfile", "shutil.copymode", "shutil.copystat",
                 "shutil.chown", "shutil.move", "os.setxattr", "os.removexattr"})
_realpath, _fsdecode, _sep, _getpid = _os.path.realpath, _os.fsdecode, _os.sep, _os.getpid

def _inside(path):
    if isinstance(path, int) or path is None:
        return True
    try:
        p = _realpath(_fsdecode(path))
    except Exception:
        return False
    return p == _ROOT or p.startswith(_ROOT + _sep) or p in _OK_PATHS

def _refuse(what):
    raise PermissionError("sandbox: " + what + " is refused")

def _hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE)
        if writing and not _inside(path):
            _refuse("writing " + repr(path) + " outside the sandbox directory")
    elif event in _FS:
        for a in args[:2]:
            if isinstance(a, (str, bytes, _os.PathLike)) and not _inside(a):
                _refuse(event + " on " + repr(a) + " outside the sandbox directory")
    elif event in _PROC:
        _refuse("creating or controlling processes (" + event + ")")
    elif event == "os.kill" and args and args[0] not in (0, _getpid()):
        _refuse("signalling other processes")
    elif event.startswith("socket.") and event != "socket.gethostname":
        _refuse("network access (" + event + ")")
    elif event.startswith("ctypes."):
        _refuse("ctypes (" + event + ")")

_sys.addaudithook(_hook)
import _posixsubprocess
def _no_fork_exec(*a, **k):
    _refuse("creating processes (fork_exec)")
_posixsubprocess.fork_exec = _no_fork_exec
del _posixsubprocess
'''

RUNNER = r'''
import sys
sys.path.insert(0, _ROOT)
MODE, MODULE, TESTS = {mode!r}, {module!r}, {tests!r}
if MODE == "pytest":
    import pytest
    sys.exit(pytest.main(["-q", "-x", "-p", "no:cacheprovider", "--rootdir", _ROOT, "-c", "pytest.ini",
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


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 1024
    file_mb: int = 16
    max_processes: int = 1
    max_open_files: int = 256
    network: bool = False

    def __post_init__(self) -> None:
        if self.wall_seconds <= 0 or self.cpu_seconds < 1:
            raise ConfigError(f"sandbox time limits must be positive, got wall {self.wall_seconds}, "
                              f"cpu {self.cpu_seconds}")
        if self.memory_mb < 64:
            raise ConfigError(f"sandbox memory limit must be >= 64 MB, got {self.memory_mb}")


@dataclass
class SandboxResult:
    """``ok``: the code exited 0 within its limits. ``reason`` says why not in a line."""

    ok: bool
    returncode: int | None
    stdout: str
    stderr: str
    reason: str
    seconds: float
    timed_out: bool = False


@lru_cache(maxsize=1)
def network_namespace_available() -> bool:
    """Whether ``unshare -n`` can give a child its own (empty) network namespace here."""
    exe = shutil.which("unshare")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _limits_fn(limits: SandboxLimits):
    def apply() -> None:  # runs in the child between fork and exec
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
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


def run_python(files: dict[str, str], script: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``script`` (Python code, guarded) in a fresh temp dir holding ``files`` (name -> text)."""
    limits = limits or SandboxLimits()
    root = Path(tempfile.mkdtemp(prefix="constrained-sandbox-"))
    t0 = time.perf_counter()
    try:
        for name, text in files.items():
            p = (root / name).resolve()
            if root.resolve() not in p.parents:
                raise ConfigError(f"sandbox file name {name!r} leaves the sandbox directory")
            p.write_text(text, encoding="utf-8")
        (root / "_sandbox_run.py").write_text(GUARD + script, encoding="utf-8")
        cmd = [sys.executable, "-I", "-B", "_sandbox_run.py"]
        if not limits.network and network_namespace_available():
            cmd = [shutil.which("unshare") or "unshare", "-n", "--", *cmd]
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "HOME": str(root), "TMPDIR": str(root),
               "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
        timed_out = False
        with open(root / "_stdout", "wb") as so, open(root / "_stderr", "wb") as se:
            proc = subprocess.Popen(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                                    start_new_session=True, preexec_fn=_limits_fn(limits), close_fds=True)
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
        out = (root / "_stdout").read_bytes()[-20000:].decode("utf-8", errors="replace")
        err = (root / "_stderr").read_bytes()[-20000:].decode("utf-8", errors="replace")
        return SandboxResult(ok=rc == 0, returncode=rc, stdout=_tail(out), stderr=_tail(err),
                             reason=_reason(rc, timed_out, limits, out, err),
                             seconds=time.perf_counter() - t0, timed_out=timed_out)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_tests(source: str, tests: str, module: str = "solution", limits: SandboxLimits | None = None
              ) -> SandboxResult:
    """Run ``tests`` against ``source`` saved as ``MODULE.py``: with pytest when the tests
    define ``test_*`` functions (they ``import MODULE``), else as statements (``assert ...``)
    executed in the module's namespace."""
    if not module.isidentifier():
        raise ConfigError(f"module name {module!r} is not a Python identifier")
    pytest_mode = "def test" in tests
    test_file = f"test_{module}.py" if pytest_mode else "_sandbox_tests.py"
    files = {f"{module}.py": source, test_file: tests, "pytest.ini": "[pytest]\n"}
    script = RUNNER.format(mode="pytest" if pytest_mode else "exec", module=module, tests=test_file)
    return run_python(files, script, limits)
