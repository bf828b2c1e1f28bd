"""Attacks on the OS sandbox, judged by evidence on the host: the file does not exist afterwards,
the process is gone, the bytes read are not the host's, the caller is alive.

Each attack runs from the tests and from the module source at import time, with the in-process
audit hook left out (``guard=False``), so the operating-system layer is judged alone; the
rebinding attacks run with the hook in place and switch it off first. The attack code
swallows its own errors: what counts is what happened on the host, not what it printed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from constrained.tasks.sandbox import SandboxLimits, os_sandbox, run_tests

pytestmark = pytest.mark.skipif(os_sandbox() is None, reason="no OS sandbox (bwrap) on this host")

LIMITS = SandboxLimits(wall_seconds=8, cpu_seconds=4, memory_mb=512, disk_mb=8, file_mb=4, max_processes=8)
SRC = "def add(a, b):\n    return a + b\n"
WHERE = ["module", "tests"]


def attack(code: str, where: str, guard: bool = False, limits: SandboxLimits = LIMITS):
    """Run ``code`` (every statement wrapped so an error does not stop the rest) in the sandbox."""
    body = "\n".join("try:\n" + "".join("    " + ln + "\n" for ln in block.splitlines())
                     + "except BaseException as e:\n    print('attack error:', type(e).__name__, e)\n"
                     for block in code.strip().split("\n\n"))
    if where == "module":
        return run_tests(SRC + "\n" + body, "assert add(1, 2) == 3", limits=limits, guard=guard)
    return run_tests(SRC, body, limits=limits, guard=guard)


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A host folder any uid may write to, so only the sandbox's mount namespace stands in the way."""
    d = tmp_path / "host"
    d.mkdir()
    d.chmod(0o777)
    return d


def _escape_writes(d: Path) -> str:
    return f"""
import os
open({str(d / 'plain')!r}, 'w').write('escaped')

import os
fd = os.open({str(d)!r}, os.O_RDONLY | os.O_DIRECTORY)
os.close(os.open('dirfd', os.O_WRONLY | os.O_CREAT, 0o666, dir_fd=fd))

import sqlite3
sqlite3.connect({str(d / 'sqlite.db')!r}).execute('create table t (x)')

import os
os.symlink({str(d / 'via_symlink')!r}, 'link')
open('link', 'w').write('escaped')

import os
open('local', 'w').write('escaped')
os.rename('local', {str(d / 'renamed')!r})

import os, sysconfig
open(os.path.join(sysconfig.get_paths()['purelib'], 'constrained_evil.pth'), 'w').write('import os')

import os
os.mkdir({str(d / 'made_dir')!r})

import ctypes
libc = ctypes.CDLL(None)
print('ctypes open', libc.open({str(d / 'via_ctypes').encode()!r}, os.O_WRONLY | os.O_CREAT, 0o666))

import os
os.chdir('/proc/1/root')
open('escaped_via_proc_root', 'w').write('x')
"""


@pytest.mark.parametrize("where", WHERE)
def test_no_write_reaches_the_host(host_dir: Path, where: str):
    import sysconfig

    res = attack(_escape_writes(host_dir), where)
    assert res.ok, res.reason  # the attacks failed quietly inside; the run itself completed
    assert sorted(os.listdir(host_dir)) == []
    assert not os.path.exists(os.path.join(sysconfig.get_paths()["purelib"], "constrained_evil.pth"))
    assert not os.path.exists("/escaped_via_proc_root")


@pytest.mark.parametrize("where", WHERE)
def test_host_files_and_the_callers_environment_are_not_readable(tmp_path: Path, where: str):
    secret = f"host-secret-{uuid.uuid4().hex}"
    (tmp_path / "secret.txt").write_text(secret)
    (tmp_path / "secret.txt").chmod(0o644)
    env_secret = f"env-secret-{uuid.uuid4().hex}"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                              env={**os.environ, "CONSTRAINED_ATTACK_SECRET": env_secret})
    me = os.getpid()
    code = f"""
import os
hits = []
for p in os.listdir('/proc'):
    try:
        data = open('/proc/' + p + '/environ', 'rb').read()
        if b'CONSTRAINED_ATTACK_SECRET' in data:
            hits.append(data[data.find(b'CONSTRAINED_ATTACK_SECRET'):][:100])
    except OSError:
        pass
print('PROC', hits)

data = open('/proc/{holder.pid}/environ', 'rb').read()
print('HOLDER', data[data.find(b'CONSTRAINED_ATTACK_SECRET'):][:100])

print('CALLER', open('/proc/{me}/environ', 'rb').read()[:200])

print('FILE', open({str(tmp_path / 'secret.txt')!r}).read())

print('ROOT', open('/proc/1/root{tmp_path / "secret.txt"}').read())

print('PASSWD', open('/etc/passwd').read()[:200])
"""
    try:
        res = attack(code, where)
    finally:
        holder.kill()
        holder.wait()
    assert res.ok, res.reason
    seen = res.stdout + res.stderr
    assert "PROC" in seen and "passwd" in seen.lower()  # every attack ran (and the output was not cut)
    assert secret not in seen and env_secret not in seen
    assert repr(Path(f"/proc/{me}/environ").read_bytes()[:40])[2:-1] not in seen
    assert Path("/etc/passwd").read_text()[:30] not in seen


def _processes_with(token: str) -> list[int]:
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if token.encode() in Path(f"/proc/{p}/cmdline").read_bytes():
                    pids.append(int(p))
            except OSError:
                pass
    return pids


@pytest.mark.parametrize("where", WHERE)
def test_no_process_survives_the_run(where: str):
    token = f"constrained-survivor-{uuid.uuid4().hex}"
    code = f"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {token!r}])
    os._exit(0)
time.sleep(0.5)
print('children started')
"""
    res = attack(code, where)
    assert "children started" in res.stdout, res.stdout + res.stderr
    deadline = time.time() + 3
    while _processes_with(token) and time.time() < deadline:
        time.sleep(0.1)
    assert _processes_with(token) == []


@pytest.mark.parametrize("where", WHERE)
def test_no_process_survives_the_wall_clock_kill(where: str):
    token = f"constrained-survivor-{uuid.uuid4().hex}"
    code = f"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {token!r}])
time.sleep(60)
"""
    res = attack(code, where, limits=SandboxLimits(wall_seconds=2, cpu_seconds=2, memory_mb=512,
                                                   max_processes=8))
    assert res.timed_out
    deadline = time.time() + 3
    while _processes_with(token) and time.time() < deadline:
        time.sleep(0.1)
    assert _processes_with(token) == []


@pytest.mark.parametrize("where", WHERE)
def test_signals_do_not_reach_the_caller(where: str):
    me = os.getpid()
    code = f"""
import os, signal
os.kill({me}, signal.SIGKILL)

import os, signal
os.killpg(os.getpgid({me}), signal.SIGKILL)

import ctypes, signal
ctypes.CDLL(None).kill({me}, signal.SIGKILL)

import os, signal
os.kill(-1, signal.SIGKILL)
"""
    res = attack(code, where)
    os.kill(me, 0)  # still here (a SIGKILL would have ended this test run)
    assert not res.ok or "attack error" in res.stdout


@pytest.mark.parametrize("where", WHERE)
def test_a_fork_bomb_is_capped_and_leaves_nothing(where: str):
    token = f"constrained-bomb-{uuid.uuid4().hex}"
    code = f"""
import os, sys
n = 0
for _ in range(100):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {token!r}])
    n += 1
print('FORKED', n)
"""
    res = attack(code, where)
    forked = [int(ln.split()[1]) for ln in res.stdout.splitlines() if ln.startswith("FORKED")]
    assert forked, res.stdout + res.stderr
    if os_sandbox() == "bwrap-root":  # RLIMIT_NPROC binds a real unprivileged uid, not root in a userns
        assert forked[0] < LIMITS.max_processes
    deadline = time.time() + 3
    while _processes_with(token) and time.time() < deadline:
        time.sleep(0.1)
    assert _processes_with(token) == []


@pytest.mark.parametrize("where", WHERE)
def test_no_network_reaches_the_host(where: str):
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    port = tcp.getsockname()[1]
    name = f"\0constrained-attack-{uuid.uuid4().hex}"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(name)
    unix.listen(8)
    unix.setblocking(False)
    code = f"""
import socket
socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi')

import socket
s = socket.socket(socket.AF_UNIX)
s.connect({name!r})
s.sendall(b'hi')

import socket
print(socket.getaddrinfo('example.com', 80))

import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'hi', ('8.8.8.8', 53))
"""
    try:
        res = attack(code, where)
        assert res.ok, res.reason
        for srv in (tcp, unix):
            with pytest.raises(BlockingIOError):
                srv.accept()
    finally:
        tcp.close()
        unix.close()


@pytest.mark.parametrize("where", WHERE)
def test_filling_the_disk_stops_at_the_cap(where: str):
    code = """
import os
for folder in ('/sandbox', '/tmp', '/dev/shm', '/dev', '/', '/proc'):
    n = 0
    try:
        with open(os.path.join(folder, 'fill'), 'wb') as f:
            while n < 256 * 2**20:
                f.write(b'x' * 2**20)
                f.flush()
                n += 2**20
    except BaseException as e:
        print('stopped', folder, type(e).__name__)
    print('WROTE', folder, n)
    try:
        for i in range(100000):
            open(os.path.join(folder, 'f%d' % i), 'wb').close()
    except BaseException as e:
        print('files', folder, i, type(e).__name__)
"""
    limits = SandboxLimits(wall_seconds=20, cpu_seconds=10, memory_mb=512, disk_mb=8, file_mb=64)
    res = attack(code, where, limits=limits)
    wrote = {ln.split()[1]: int(ln.split()[2]) for ln in res.stdout.splitlines() if ln.startswith("WROTE")}
    assert wrote, res.stdout + res.stderr
    assert sum(wrote.values()) <= limits.disk_mb * 2**20, wrote


def test_rebinding_the_guards_helpers_does_not_open_the_host(host_dir: Path):
    me = os.getpid()
    code = f"""
import __main__, sys
for name in ('_inside', '_refuse', '_hook', '_install_guard'):
    setattr(__main__, name, lambda *a, **k: True)
import os
os.path.realpath = lambda p: '/sandbox/x'
os.fsdecode = lambda p: '/sandbox/x'

import _posixsubprocess, os
print('fork_exec is', _posixsubprocess.fork_exec)

open({str(host_dir / 'after_rebind')!r}, 'w').write('x')

import os, signal
os.kill({me}, signal.SIGKILL)

import subprocess
subprocess.run(['/bin/sh', '-c', 'touch {host_dir / 'via_shell'}'])
"""
    for where in WHERE:
        res = attack(code, where, guard=True)
        assert res.ok, res.reason
        assert "refused" in res.stdout  # the hook itself still held
    assert os.listdir(host_dir) == []
    os.kill(me, 0)


def test_the_sandbox_is_its_own_pid_namespace():
    res = run_tests(SRC, "import os\nprint('PIDS', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))",
                    limits=LIMITS, guard=False)
    assert res.ok, res.reason
    pids = [ln for ln in res.stdout.splitlines() if ln.startswith("PIDS")][0]
    assert max(eval(pids[5:])) < 10  # only the namespace's own few processes are visible


@pytest.mark.parametrize("where", WHERE)
def test_a_nested_namespace_cannot_mount_an_uncapped_tmpfs(where: str):
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
uid, gid = os.getuid(), os.getgid()
print('unshare', libc.unshare(0x10000000 | 0x00020000), ctypes.get_errno())
for name, text in (('setgroups', 'deny'), ('uid_map', '0 %d 1' % uid), ('gid_map', '0 %d 1' % gid)):
    try:
        open('/proc/self/' + name, 'w').write(text)
    except OSError as e:
        print(name, e)
os.makedirs('/sandbox/m', exist_ok=True)
print('mount', libc.mount(b'none', b'/sandbox/m', b'tmpfs', 0, None), ctypes.get_errno())
n = 0
try:
    for i in range(6):
        with open('/sandbox/m/f%d' % i, 'wb') as f:
            for _ in range(4):
                f.write(b'x' * 2**20)
                n += 2**20
except OSError as e:
    print('stopped', e)
print('WROTE', n)
"""
    res = attack(code, where)
    wrote = [int(ln.split()[1]) for ln in res.stdout.splitlines() if ln.startswith("WROTE")]
    assert wrote and wrote[0] <= LIMITS.disk_mb * 2**20, res.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can try both bwrap modes")
def test_the_user_namespace_mode_holds_too(host_dir: Path, monkeypatch):
    """As root the root mode is used; the user-namespace mode (ordinary users, or where the root
    mode is refused) must hold against the same writes, disk filling and nested namespaces."""
    import constrained.tasks.sandbox as sandbox

    monkeypatch.setattr(sandbox, "os_sandbox", lambda: "bwrap-userns")
    res = attack(_escape_writes(host_dir), "tests")
    assert res.ok and res.mode == "bwrap-userns", res.reason
    assert os.listdir(host_dir) == []
    fill = "\n".join(["import os", "n = 0", "for folder in ('/sandbox', '/', '/dev', '/dev/shm'):",
                      "    try:", "        with open(os.path.join(folder, 'fill'), 'wb') as f:",
                      "            for _ in range(32):", "                f.write(b'x' * 2**20)",
                      "                n += 2**20", "    except OSError:", "        pass", "print('WROTE', n)"])
    res = attack(fill, "tests", limits=SandboxLimits(wall_seconds=20, cpu_seconds=10, memory_mb=512, disk_mb=8,
                                                     file_mb=64))
    wrote = [int(ln.split()[1]) for ln in res.stdout.splitlines() if ln.startswith("WROTE")]
    assert wrote and wrote[0] <= 8 * 2**20, res.stdout
