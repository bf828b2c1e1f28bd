"""Sandbox benchmark: the wall time of one sandboxed test run under bubblewrap (the OS sandbox)
against the weaker in-process mode of before (a plain subprocess with rlimits, ``unshare -n``
and the audit hook; ``CONSTRAINED_UNSAFE_SANDBOX=1``).

    python benchmarks/sandbox.py --runs 30

Three workloads, each run ``--runs`` times per mode, alternating modes so drift on a shared
machine hits both alike: an empty script (start-up only), an ``assert`` snippet against a
module (how ``code-infill --tests "assert ..."`` runs), and a pytest file (``def test_...``).
Writes benchmarks/results/sandbox.md; rebuild BENCHMARKS.md with benchmarks/collect.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import constrained.tasks.sandbox as sb  # noqa: E402
from common import command, machine, percentile, write_section  # noqa: E402

SRC = "def add(a, b):\n    return a + b\n"
WORKLOADS = {
    "empty script": lambda: sb.run_python({}, "pass\n", LIMITS),
    "assert snippet": lambda: sb.run_tests(SRC, "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n", limits=LIMITS),
    "pytest file": lambda: sb.run_tests(SRC, "from solution import add\n\n\ndef test_add():\n"
                                        "    assert add(2, 2) == 4\n", limits=LIMITS),
}
LIMITS = sb.SandboxLimits(wall_seconds=30, cpu_seconds=30)


def timed(fn) -> float:
    t0 = time.perf_counter()
    res = fn()
    dt = time.perf_counter() - t0
    if not res.ok:
        raise SystemExit(f"a benchmark run failed: {res.reason}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    mode = sb.os_sandbox()
    probe = time.perf_counter() - t0
    if mode is None:
        raise SystemExit("no OS sandbox here (install bubblewrap): nothing to compare")
    real = sb.os_sandbox
    unsafe = lambda: None  # noqa: E731
    os.environ[sb.UNSAFE_ENV] = "1"
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the unsafe mode announces itself on stderr each run
    times: dict[tuple[str, str], list[float]] = {}
    for name, fn in WORKLOADS.items():
        for i in range(a.runs + 1):  # the first round is a warm-up, not counted
            for label in ("bwrap", "in-process"):
                sb.os_sandbox = real if label == "bwrap" else unsafe
                err, sys.stderr = sys.stderr, devnull
                try:
                    dt = timed(fn)
                finally:
                    sys.stderr = err
                if i:
                    times.setdefault((name, label), []).append(dt)
    sb.os_sandbox = real
    rows = []
    for name in WORKLOADS:
        b, u = times[(name, "bwrap")], times[(name, "in-process")]
        mb, mu = statistics.median(b), statistics.median(u)
        rows.append(f"| {name} | {mu * 1000:.0f} ({percentile(u, 90) * 1000:.0f}) | "
                    f"{mb * 1000:.0f} ({percentile(b, 90) * 1000:.0f}) | {(mb - mu) * 1000:+.0f} | {mb / mu:.2f}x |")
    text = "\n".join([
        "## Sandbox: cost of the OS sandbox per test run",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}; bubblewrap mode `{mode}` (as root: namespaces without a user namespace, "
        "the code drops to an unprivileged uid)  ",
        f"Each row: {a.runs} runs per mode, alternating, after one warm-up run each; milliseconds of wall time "
        "per sandboxed run, median (90th percentile), as `Task.validate` pays it for one completed hole. The "
        "machine was shared with other jobs, so the tails are noisy; the medians are the figure to read.",
        "",
        "| workload | in-process mode of before, ms | bwrap OS sandbox, ms | overhead, ms | ratio |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Finding which sandbox works (`os_sandbox()`, probed once per process and cached): {probe * 1000:.0f} ms. "
        "The in-process mode is the weaker one kept behind `CONSTRAINED_UNSAFE_SANDBOX=1`; the attack suite "
        "(`tests/test_sandbox_attacks.py`) gets files written, read and left running through it, and nothing "
        "through the OS sandbox.",
    ])
    path = write_section("sandbox", text)
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
