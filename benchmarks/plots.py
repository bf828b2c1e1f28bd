"""Figures for the benchmark tables (matplotlib, no display needed), written as PNGs under
benchmarks/figures/ next to BENCHMARKS.md, plus the markdown that links them.

Any benchmark script can call these with the figures it measured:

    from plots import figure_md, solve_rate_vs_passes
    png = solve_rate_vs_passes({"default": [(12, True), (64, False)]}, max_passes=64, name="sudoku_passes")
    lines.append(figure_md(png, "verified solve rate vs pass budget"))

- ``solve_rate_vs_passes``: share of problems validated within k passes, per setting.
- ``tokens_per_pass_vs_threshold``: tokens committed per pass (and the solve rate) per sampler threshold.
- ``throughput_vs_batch_size``: problems per second per batch size (log-2 axis).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "benchmarks" / "figures"


def _out(name: str, out_dir: Path | None) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"figure name {name!r} must be a plain file stem")
    d = FIGURES if out_dir is None else Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.png"


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})  # no version stamp: figures diff cleanly
    plt.close(fig)
    return path


def solve_rate_curve(runs: Sequence[tuple[int, bool]], max_passes: int) -> list[float]:
    """Share of problems validated within k passes, k = 1..max_passes; ``runs`` holds
    (passes used, validated) per problem."""
    if max_passes < 1:
        raise ValueError(f"max_passes must be >= 1, got {max_passes}")
    n = len(runs)
    if n == 0:
        raise ValueError("no runs to plot")
    return [sum(1 for p, ok in runs if ok and p <= k) / n for k in range(1, max_passes + 1)]


def solve_rate_vs_passes(settings: Mapping[str, Sequence[tuple[int, bool]]], max_passes: int,
                         name: str = "solve_rate_vs_passes",
                         title: str = "Verified solve rate vs pass budget",
                         out_dir: Path | None = None) -> Path:
    """One line per setting: the share of problems validated within k passes."""
    if not settings:
        raise ValueError("no settings to plot")
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ks = list(range(1, max_passes + 1))
    for label, runs in settings.items():
        ax.plot(ks, [100 * v for v in solve_rate_curve(runs, max_passes)], label=label, linewidth=2)
    ax.set_xlabel("passes (model forward calls) allowed")
    ax.set_ylabel("validated (%)")
    ax.set_xlim(1, max_passes)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title(title, fontsize=11)
    return _save(fig, _out(name, out_dir))


def tokens_per_pass_vs_threshold(thresholds: Sequence[float], tokens_per_pass: Sequence[float],
                                 solve_rate: Sequence[float] | None = None, name: str = "tokens_per_pass",
                                 title: str = "Tokens committed per pass vs confidence threshold",
                                 out_dir: Path | None = None) -> Path:
    """Tokens committed per pass against the sampler's threshold; the solve rate (0..1) on a
    second axis when given."""
    if not thresholds or len(thresholds) != len(tokens_per_pass):
        raise ValueError("thresholds and tokens_per_pass must be non-empty and of equal length")
    if solve_rate is not None and len(solve_rate) != len(thresholds):
        raise ValueError("solve_rate must have one value per threshold")
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(thresholds, tokens_per_pass, "o-", color="#2a6fdb", linewidth=2, label="tokens per pass")
    ax.set_xlabel("commit threshold (probability)")
    ax.set_ylabel("tokens committed per pass", color="#2a6fdb")
    ax.grid(alpha=0.3)
    if solve_rate is not None:
        ax2 = ax.twinx()
        ax2.plot(thresholds, [100 * v for v in solve_rate], "s--", color="#1f8a4c", linewidth=2,
                 label="validated")
        ax2.set_ylabel("validated (%)", color="#1f8a4c")
        ax2.set_ylim(0, 100)
    ax.set_title(title, fontsize=11)
    return _save(fig, _out(name, out_dir))


def throughput_vs_batch_size(batch_sizes: Sequence[int], per_second: Sequence[float],
                             name: str = "throughput_vs_batch", unit: str = "problems",
                             title: str = "Throughput vs batch size", out_dir: Path | None = None) -> Path:
    """Problems solved per second against the batch size (log-2 x axis)."""
    if not batch_sizes or len(batch_sizes) != len(per_second):
        raise ValueError("batch_sizes and per_second must be non-empty and of equal length")
    if any(b < 1 for b in batch_sizes):
        raise ValueError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(batch_sizes, per_second, "o-", color="#d9363e", linewidth=2)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(batch_sizes), [str(b) for b in batch_sizes])
    ax.set_xlabel("batch size")
    ax.set_ylabel(f"{unit} per second")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=11)
    return _save(fig, _out(name, out_dir))


def figure_md(path: Path, alt: str) -> str:
    """Markdown that shows ``path`` from BENCHMARKS.md (at the repository root)."""
    rel = os.path.relpath(Path(path).resolve(), ROOT)
    return f"![{alt}]({rel})"
