"""Start-up of the ``constrained`` command: wall time of the first five minutes' commands, what
each imports, and how many lines it writes to stderr; then the per-pass time under load with 1
and 2 torch threads.

    python benchmarks/startup.py --runs 5                          # this checkout's `constrained`
    python benchmarks/startup.py --runs 5 --label before --exe /tmp/base/.venv/bin/constrained

Each command runs ``--runs`` times as a fresh process (``OMP_NUM_THREADS`` unset unless given);
the table gives the median and the fastest run. "imports torch / transformers" comes from one
more run under ``python -X importtime``. Rows of several labels (before / after) accumulate in
``benchmarks/results/startup.json`` and are written together to ``benchmarks/results/startup.md``.
The machine is shared: the load average at the start of each command is recorded beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
#: the per-pass timing's puzzle: one that takes the shipped model several passes (the README's trace example)
PASS_PUZZLE = "..62...9.....9..........73...2..8..59....6...53..2...7....4....7.9..5..2.8.1..4.."

#: (name, arguments, expected exit status)
COMMANDS = [
    ("--help", ["--help"], 0),
    ("tasks", ["tasks"], 0),
    ("bad puzzle (20 cells)", ["solve", "sudoku", "53..7....6..195....9"], 2),
    ("mistyped option", ["solve", "sudoku", PUZZLE, "--max-pases", "3"], 2),
    ("missing file", ["solve", "sudoku", "puzzles/missing.txt"], 2),
    ("solve sudoku PUZZLE", ["solve", "sudoku", PUZZLE], 0),
]


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} cores; Python {sys.version.split()[0]}"


def load() -> float:
    return os.getloadavg()[0]


def run_once(exe: list[str], args: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, int, str]:
    """(wall s, CPU s (user + system of the child), exit status, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([*exe, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, r.returncode, r.stderr


def imported(python: str, args: list[str], env: dict[str, str], cwd: str) -> set[str]:
    r = subprocess.run([python, "-X", "importtime", "-m", "constrained.cli", *args], capture_output=True,
                       text=True, env=env, cwd=cwd, timeout=300)
    mods = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            mods.add(line.rsplit("|", 1)[1].strip())
    return mods


def startup_rows(exe: list[str], python: str, runs: int) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PYTHONWARNINGS")}
    rows = []
    with tempfile.TemporaryDirectory() as cwd:  # nothing the commands write lands in the repository
        for name, args, want in COMMANDS:
            la = load()
            times, cpus, rc, err = [], [], None, ""
            for _ in range(runs):
                t, c, rc, err = run_once(exe, args, env, cwd)
                times.append(t)
                cpus.append(c)
            mods = imported(python, args, env, cwd)
            rows.append({"command": name, "args": args, "median_s": statistics.median(times), "min_s": min(times),
                         "cpu_s": statistics.median(cpus),
                         "exit": rc, "expected_exit": want, "stderr_lines": len(err.splitlines()),
                         "torch": "torch" in mods, "transformers": "transformers" in mods, "load": la,
                         "stderr_head": err.strip().splitlines()[:2]})
            print(f"{name:24s} median {rows[-1]['median_s']:.2f} s  min {rows[-1]['min_s']:.2f} s  "
                  f"cpu {rows[-1]['cpu_s']:.2f} s  exit {rc}  "
                  f"stderr {rows[-1]['stderr_lines']} lines  torch={rows[-1]['torch']}  "
                  f"transformers={rows[-1]['transformers']}  load {la:.1f}", flush=True)
    return rows


BUSY = "while True:\n    pass\n"

PASS_TIMING = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from constrained import load_task
from constrained.api import make_solver
task = load_task("sudoku")
solver = make_solver(task, "default", max_passes=64)
canvas = task.encode([sys.argv[2]])
solver.run(canvas, [sys.argv[2]])  # warm-up
solver.stats.__init__()
t0 = time.perf_counter()
for _ in range(int(sys.argv[3])):
    solver.run(canvas, [sys.argv[2]])
print(solver.stats.seconds / max(solver.stats.passes, 1), solver.stats.passes, torch.get_num_threads())
"""


def thread_rows(python: str, repeats: int, busy: int) -> list[dict]:
    """Per-pass time of the shipped Sudoku model with 1 and 2 torch threads, idle-ish and with
    ``busy`` busy-loop processes running beside it."""
    rows = []
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    for n_busy in (0, busy):
        procs = [subprocess.Popen([python, "-c", BUSY]) for _ in range(n_busy)]
        try:
            time.sleep(0.5 if n_busy else 0)
            for threads in (1, 2):
                la = load()
                r = subprocess.run([python, "-c", PASS_TIMING, str(threads), PASS_PUZZLE, str(repeats)],
                                   capture_output=True, text=True, env=env, timeout=600)
                if r.returncode != 0:
                    raise SystemExit(r.stderr)
                per_pass, passes, got = r.stdout.split()
                rows.append({"busy": n_busy, "threads": int(got), "per_pass_ms": 1000 * float(per_pass),
                             "passes": int(passes), "load": la})
                print(f"busy {n_busy}  threads {got}: {1000 * float(per_pass):.1f} ms/pass over {passes} passes "
                      f"(load {la:.1f})", flush=True)
        finally:
            for p in procs:
                p.kill()
                p.wait()
    return rows


def table(data: dict) -> str:
    out = ["## Start-up", "",
           "What a newcomer's first commands cost, each a fresh process (`constrained` console script); "
           "median and fastest wall time of the runs, the median CPU time (user + system) of the process, "
           "and whether the command imported torch / transformers (`python -X importtime`). The machine is "
           "shared by several agents (the 1-minute load average when each row started is given; 2 cores), so "
           "wall times carry the wait for a core; with torch on one thread the CPU time is close to what the "
           "wall time would be on an idle machine. Targets: `--help` and a bad-input error under 1 s, "
           "`solve sudoku PUZZLE` under 2.5 s on an idle machine, 0 lines on stderr for a successful solve.", ""]
    for label, entry in data.items():
        out += [f"### {label}", "", f"Command: `{entry['command']}`  ", f"Machine: {entry['machine']}  ",
                f"Code: {entry['code']}", "",
                "| command | median wall s | fastest wall s | median CPU s | exit | stderr lines | imports torch "
                "| imports transformers | load |", "|---|---|---|---|---|---|---|---|---|"]
        for r in entry["rows"]:
            out.append(f"| `constrained {' '.join(r['args'])[:60]}` ({r['command']}) | {r['median_s']:.2f} | "
                       f"{r['min_s']:.2f} | {r.get('cpu_s', float('nan')):.2f} | {r['exit']} | {r['stderr_lines']} | "
                       f"{'yes' if r['torch'] else 'no'} | "
                       f"{'yes' if r['transformers'] else 'no'} | {r['load']:.1f} |")
        if entry.get("threads"):
            cmd = entry.get("threads_command", entry["command"])
            puzzle = entry.get("threads_puzzle", PASS_PUZZLE)
            out += ["", f"Per-pass time of the shipped Sudoku model (puzzle `{puzzle}` solved repeatedly; the "
                    f"solver's `stats`), with busy-loop processes beside it (`{cmd}`)"
                    + (f"; {entry['threads_note']}" if entry.get("threads_note") else "") + ":", "",
                    "| busy-loop processes | torch threads | ms per pass | passes timed | load |",
                    "|---|---|---|---|---|"]
            for r in entry["threads"]:
                out.append(f"| {r['busy']} | {r['threads']} | {r['per_pass_ms']:.1f} | {r['passes']} | "
                           f"{r['load']:.1f} |")
        out.append("")
    if "after" in data:
        out += verdicts(data["after"]["rows"])
    return "\n".join(out)


def verdicts(rows: list[dict]) -> list[str]:
    """The targets against the "after" rows: wall time on this (shared) machine, and CPU time as the
    stand-in for an idle machine."""
    out = ["### Targets", ""]
    for r in rows:
        if r["command"] == "solve sudoku PUZZLE":
            limit = 2.5
        elif r["command"] == "tasks":
            continue
        else:
            limit = 1.0
        wall, cpu = r["median_s"], r.get("cpu_s", float("nan"))
        met = "met" if cpu < limit else "**not met**"
        out.append(f"- `{r['command']}` under {limit:g} s: {met} (median wall {wall:.2f} s at load {r['load']:.1f}, "
                   f"CPU {cpu:.2f} s)")
    solve = next((r for r in rows if r["command"] == "solve sudoku PUZZLE"), None)
    if solve is not None:
        quiet = "met" if solve["stderr_lines"] == 0 else "**not met**"
        out.append(f"- 0 lines on stderr for a successful solve: {quiet}")
    return out + [""]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    ap.add_argument("--label", default="after", help="row group name, e.g. before / after (default after)")
    ap.add_argument("--exe", default=None,
                    help="the constrained console script to time (default: the one beside this Python)")
    ap.add_argument("--code", default=None, help="what code was timed (default: this checkout's git commit)")
    ap.add_argument("--threads", action=argparse.BooleanOptionalAction, default=True,
                    help="also time passes with 1 and 2 torch threads under load (default on)")
    ap.add_argument("--busy", type=int, default=2, help="busy-loop processes for the threads table (default 2)")
    ap.add_argument("--repeats", type=int, default=20, help="solves per threads row (default 20)")
    a = ap.parse_args(argv)
    exe = Path(a.exe or Path(sys.executable).with_name("constrained"))
    python = str(exe.with_name("python"))
    code = a.code or subprocess.run(["git", "-C", str(exe.parent.parent.parent), "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True).stdout.strip()
    entry = {"command": "python " + shlex.join([os.path.relpath(sys.argv[0], ROOT), *(argv or sys.argv[1:])]),
             "machine": machine(), "code": code, "rows": startup_rows([str(exe)], python, a.runs)}
    if a.threads:
        entry["threads"] = thread_rows(python, a.repeats, a.busy)
    store = RESULTS / "startup.json"
    data = json.loads(store.read_text()) if store.exists() else {}
    if not a.threads and data.get(a.label, {}).get("threads"):  # keep the last threads table of this label
        entry["threads"] = data[a.label]["threads"]
        entry["threads_command"] = data[a.label].get("threads_command", data[a.label]["command"])
        entry["threads_puzzle"] = data[a.label].get("threads_puzzle", PASS_PUZZLE)
        if data[a.label].get("threads_note"):
            entry["threads_note"] = data[a.label]["threads_note"]
    elif a.threads:
        entry["threads_command"], entry["threads_puzzle"] = entry["command"], PASS_PUZZLE
    data[a.label] = entry
    RESULTS.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(data, indent=1) + "\n")
    (RESULTS / "startup.md").write_text(table(data).strip() + "\n")
    print(f"wrote {RESULTS / 'startup.md'}")


if __name__ == "__main__":
    main()
