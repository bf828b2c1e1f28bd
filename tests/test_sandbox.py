"""The sandbox refuses or kills what generated code must not do, and the host stays untouched."""

import os
import shutil
from pathlib import Path

import constrained.tasks.sandbox as sandbox
import pytest
from constrained.tasks.sandbox import (
    UNSAFE_ENV,
    SandboxLimits,
    network_namespace_available,
    os_sandbox,
    run_python,
    run_tests,
    unsafe_opt_in,
)

from constrained.errors import SandboxUnavailable

needs_sandbox = pytest.mark.skipif(os_sandbox() is None and not unsafe_opt_in(),
                                   reason="no OS sandbox (bwrap) here and CONSTRAINED_UNSAFE_SANDBOX not set")

FAST = SandboxLimits(wall_seconds=6, cpu_seconds=1, memory_mb=256)
SRC = "def add(a, b):\n    return a + b\n"


@needs_sandbox
def test_assert_snippet_runs_against_the_module():
    assert run_tests(SRC, "assert add(1, 2) == 3", limits=FAST).ok
    bad = run_tests(SRC, "assert add(1, 2) == 4, 'add is wrong'", limits=FAST)
    assert not bad.ok and "add is wrong" in bad.reason


@needs_sandbox
def test_pytest_file_imports_the_module_by_name():
    tests = "from mymod import add\n\ndef test_add():\n    assert add(2, 2) == 4\n"
    assert run_tests(SRC, tests, module="mymod", limits=FAST).ok
    res = run_tests(SRC, tests.replace("== 4", "== 5"), module="mymod", limits=FAST)
    assert not res.ok and "FAILED" in res.reason


@needs_sandbox
def test_infinite_loop_is_killed():
    res = run_tests("while True:\n    pass\n", "assert True", limits=FAST)
    assert not res.ok and "killed" in res.reason


@needs_sandbox
def test_sleeping_forever_is_killed_at_the_wall_clock_limit():
    res = run_tests("import time\nwhile True:\n    time.sleep(0.2)\n", "assert True",
                    limits=SandboxLimits(wall_seconds=2, cpu_seconds=5, memory_mb=256))
    assert res.timed_out and not res.ok and "wall-clock" in res.reason


@needs_sandbox
def test_unbounded_allocation_is_stopped():
    res = run_tests("x = []\nwhile True:\n    x.append(bytearray(10**7))\n", "assert True", limits=FAST)
    assert not res.ok and ("MemoryError" in res.reason or "killed" in res.reason)


@needs_sandbox
def test_fork_is_refused_and_no_child_runs(tmp_path: Path):
    marker = tmp_path / "forked"
    code = f"import os\nif os.fork() == 0:\n    open({str(marker)!r}, 'w').write('child')\n"
    res = run_tests(code, "assert True", limits=FAST)
    assert not res.ok and "refused" in res.reason
    assert not marker.exists()


@needs_sandbox
def test_subprocess_and_os_system_are_refused(tmp_path: Path):
    marker = tmp_path / "spawned"
    for code in (f"import subprocess\nsubprocess.run(['touch', {str(marker)!r}])\n",
                 f"import os\nos.system('touch {marker}')\n"):
        res = run_tests(code, "assert True", limits=FAST)
        assert not res.ok and "refused" in res.reason
    assert not marker.exists()


@needs_sandbox
def test_write_outside_the_temp_dir_is_refused(tmp_path: Path):
    canary = tmp_path / "canary.txt"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for code in (f"open({str(canary)!r}, 'w').write('x')\n",
                 f"import os\nos.remove({str(victim)!r})\n",
                 f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n"):
        res = run_tests(code, "assert True", limits=FAST)
        assert not res.ok and "outside the sandbox directory" in res.reason
    assert not canary.exists() and victim.read_text() == "keep me"


@needs_sandbox
def test_writing_inside_the_temp_dir_is_allowed():
    code = "import os\nopen('scratch.txt', 'w').write('ok')\nDATA = open('scratch.txt').read()\n"
    assert run_tests(code, "assert DATA == 'ok'", limits=FAST).ok


@needs_sandbox
def test_sockets_are_refused():
    code = "import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 9))\n"
    res = run_tests(code, "assert True", limits=FAST)
    assert not res.ok and "network" in res.reason


@needs_sandbox
def test_ctypes_is_refused():
    res = run_tests("import ctypes\nctypes.CDLL(None).fork()\n", "assert True", limits=FAST)
    assert not res.ok and "refused" in res.reason


@needs_sandbox
@pytest.mark.skipif(not network_namespace_available(), reason="no network namespaces on this host")
def test_child_has_no_network_interface_but_loopback():
    code = "print(sorted(ln.split(':')[0].strip() for ln in open('/proc/net/dev').readlines()[2:]))\n"
    res = run_python({}, code, FAST)
    assert res.ok and res.stdout.strip() == "['lo']"


@needs_sandbox
def test_environment_is_cleared_and_cwd_is_a_fresh_temp_dir(monkeypatch):
    monkeypatch.setenv("CONSTRAINED_SECRET", "hunter2")
    code = "import os\nENV = dict(os.environ)\nCWD = os.getcwd()\n"
    tests = (f"assert 'CONSTRAINED_SECRET' not in ENV, ENV\nassert CWD != {os.getcwd()!r}\n"
             "assert 'sandbox' in CWD")
    assert run_tests(code, tests, limits=FAST).ok


@needs_sandbox
def test_sandbox_dir_is_removed_afterwards():
    res = run_python({}, "import os\nprint(os.getcwd())\n", FAST)
    assert res.ok and not Path(res.stdout.strip()).exists()


def test_without_an_os_sandbox_running_code_is_refused(monkeypatch):
    from constrained import load_task

    monkeypatch.setattr(sandbox, "os_sandbox", lambda: None)
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        run_tests(SRC, "assert add(1, 2) == 3", limits=FAST)
    with pytest.raises(SandboxUnavailable, match=UNSAFE_ENV):
        load_task("code-infill", tests="assert add(1, 2) == 3")
    load_task("code-infill")  # without tests nothing runs code: no sandbox needed


def test_the_weaker_mode_needs_the_opt_in_and_announces_itself_at_every_run(monkeypatch, capfd):
    monkeypatch.setattr(sandbox, "os_sandbox", lambda: None)
    monkeypatch.setenv(UNSAFE_ENV, "1")
    for _ in range(2):
        res = run_tests(SRC, "assert add(1, 2) == 3", limits=FAST)
        assert res.ok and res.mode == "unsafe-inprocess"
    assert capfd.readouterr().err.count("WARNING: no OS sandbox") == 2


@pytest.mark.skipif(os_sandbox() is None, reason="no OS sandbox (bwrap) on this host")
def test_the_os_sandbox_is_used_when_present_and_runs_unprivileged():
    res = run_python({}, "import os\nprint(os.getuid(), os.getcwd(), sorted(os.listdir('/')))", FAST)
    assert res.ok and res.mode.startswith("bwrap")
    uid, cwd, rest = res.stdout.split(" ", 2)
    assert int(uid) != 0 and cwd == "/sandbox" and "etc" not in rest and "home" not in rest


@needs_sandbox
def test_line_endings_and_a_bom_reach_the_sandbox_unchanged():
    src = "\ufeffX = 1\r\nY = 2\r\n"
    tests = ("RAW = open('solution.py', 'rb').read()\n"
             "assert RAW.startswith(b'\\xef\\xbb\\xbf') and b'\\r\\n' in RAW, RAW\n")
    assert run_tests(src, tests, limits=FAST).ok


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="no bwrap installed")
def test_a_bwrap_that_fails_its_probe_is_refused_in_its_own_words(monkeypatch):
    real = sandbox._bwrap_base
    monkeypatch.setattr(sandbox, "_bwrap_base", lambda mode, limits: [*real(mode, limits), "--no-such-option"])
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    sandbox.os_sandbox.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="not usable here: .*--no-such-option"):
            run_tests(SRC, "assert add(1, 2) == 3", limits=FAST)
    finally:
        monkeypatch.undo()
        sandbox.os_sandbox.cache_clear()
        sandbox.PROBE_ERRORS.clear()
    assert run_tests(SRC, "assert add(1, 2) == 3", limits=FAST).ok  # the real one probes fine again
