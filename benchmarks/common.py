"""Shared bits of the benchmark scripts: machine description, percentiles, result files."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DATA = ROOT / "benchmarks" / "data"


def cached_pairs(task_name: str, n: int, grade: str, seed: int) -> list[tuple[str, str]]:
    """(problem, solution) pairs from ``task.generate(n, seed, grade)``, kept in
    benchmarks/data/TASK-GRADE-N-seedSEED.txt; a larger saved set of the same seed serves its prefix
    (the generator draws puzzles in order from one stream)."""
    path = DATA / f"{task_name}-{grade}-{n}-seed{seed}.txt"
    if not path.exists():
        for bigger in sorted(DATA.glob(f"{task_name}-{grade}-*-seed{seed}.txt")):
            size = bigger.stem.split("-")[-2]
            if size.isdigit() and int(size) >= n:
                path = bigger
                break
    if path.exists():
        return [tuple(line.split(",")) for line in path.read_text().split()][:n]  # type: ignore[misc]
    from constrained import load_task

    pairs = load_task(task_name).generate(n, seed=seed, grade=grade, progress=True)
    DATA.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(f"{p},{s}" for p, s in pairs) + "\n")
    return pairs


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, {gpu}; torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads; Python {platform.python_version()}")


def command() -> str:
    return "python " + shlex.join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def write_section(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text.strip() + "\n")
    return path
