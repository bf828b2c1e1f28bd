"""``constrained bench [NAME] [OPTIONS]``: run ``benchmarks/NAME.py`` of a source checkout
(default ``engine``), passing OPTIONS on, then rebuild BENCHMARKS.md from every section."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .errors import ConstrainedError

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def available() -> list[str]:
    if not BENCHMARKS.is_dir():
        return []
    return sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in ("common", "collect"))


def cmd_bench(a: argparse.Namespace) -> int:
    names = available()
    if not names:
        raise ConstrainedError(f"no benchmarks/ folder next to the package ({BENCHMARKS}); "
                               "`constrained bench` runs from a source checkout")
    if a.name not in names:
        raise ConstrainedError(f"unknown benchmark {a.name!r}; available: {', '.join(names)}")
    args = list(a.task_args or [])
    rc = subprocess.call([sys.executable, str(BENCHMARKS / f"{a.name}.py"), *args], cwd=ROOT)
    if rc != 0:
        return rc
    return subprocess.call([sys.executable, str(BENCHMARKS / "collect.py")], cwd=ROOT)


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("bench", help="run benchmarks/NAME.py (default: engine) and rebuild BENCHMARKS.md",
                       description=__doc__)
    s.add_argument("name", nargs="?", default="engine", help="benchmark script name (default engine)")
    s.set_defaults(fn=cmd_bench, task_args=True)  # unknown options go to the script (e.g. --quick)
