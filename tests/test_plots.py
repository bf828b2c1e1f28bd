"""benchmarks/plots.py: the curves are computed right and every figure is a PNG."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from plots import (  # noqa: E402
    figure_md,
    solve_rate_curve,
    solve_rate_vs_passes,
    throughput_vs_batch_size,
    tokens_per_pass_vs_threshold,
)

PNG = b"\x89PNG\r\n\x1a\n"


def test_solve_rate_curve_counts_problems_validated_within_k_passes():
    runs = [(2, True), (5, True), (5, False), (64, False)]
    assert solve_rate_curve(runs, 6) == [0, 0.25, 0.25, 0.25, 0.5, 0.5]
    with pytest.raises(ValueError, match="no runs"):
        solve_rate_curve([], 4)


def test_every_figure_is_written_as_png(tmp_path):
    paths = [
        solve_rate_vs_passes({"a": [(3, True), (9, False)], "b": [(1, True)]}, 10, "p", out_dir=tmp_path),
        tokens_per_pass_vs_threshold([0.5, 0.9], [8.0, 3.5], [0.4, 0.6], name="t", out_dir=tmp_path),
        throughput_vs_batch_size([1, 4, 16], [2.0, 6.5, 9.1], name="b", out_dir=tmp_path),
    ]
    for p in paths:
        assert p.parent == tmp_path and p.read_bytes()[:8] == PNG and p.stat().st_size > 5000
    assert figure_md(paths[0], "x").startswith("![x](")


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="equal length"):
        tokens_per_pass_vs_threshold([0.5], [1.0, 2.0])
    with pytest.raises(ValueError, match=">= 1"):
        throughput_vs_batch_size([0, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="plain file stem"):
        throughput_vs_batch_size([1], [1.0], name="../x")
