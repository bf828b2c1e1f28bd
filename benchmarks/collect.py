"""Assemble BENCHMARKS.md from the sections the benchmark scripts write to benchmarks/results/.

Each benchmark writes its own ``benchmarks/results/NAME.md`` (tables plus the command that
produced them), so scripts never overwrite each other's figures.

    python benchmarks/collect.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["search", "sudoku", "sudoku-noise", "graphs", "graphs-dimacs", "peptide", "code", "code-models", "engine",
         "engine-equal-steps", "adapters", "batch", "finetune", "sandbox", "startup"]


def main() -> None:
    parts = sorted((ROOT / "benchmarks" / "results").glob("*.md"),
                   key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    head = ("# Benchmarks\n\nEvery table below was produced by the command written above it, on the machine "
            "it names. Figures are measured, not estimated; targets not reached are marked as such.\n"
            "Regenerate this file with `python benchmarks/collect.py` after running the benchmarks.\n")
    body = "\n\n".join(p.read_text().strip() for p in parts)
    (ROOT / "BENCHMARKS.md").write_text(head + "\n" + body + "\n")
    print(f"BENCHMARKS.md: {len(parts)} sections")


if __name__ == "__main__":
    main()
