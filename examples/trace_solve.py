"""Watch the solver work: solve one puzzle with a per-pass trace, print what happened at each
pass, and write the HTML replay (open it in any browser; it needs no network).

    python examples/trace_solve.py                    # writes the page to your temp folder
    python examples/trace_solve.py --out trace.html
    # the same from the shell: constrained trace sudoku PUZZLE --out trace.html
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from constrained import render_html, solve

PUZZLE = "1....7.9..3..2...8..96..5....53..9...1..8...26....4...3......1..4......7..7...3.."  # AI Escargot


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default' (shipped), or a model folder")
    ap.add_argument("--puzzle", default=PUZZLE)
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "constrained-trace.html"),
                    help="the HTML page to write (default: constrained-trace.html in the temp folder)")
    a = ap.parse_args(argv)

    res = solve("sudoku", a.puzzle, model=a.model, trace=True)
    for k, p in enumerate(res.trace, 1):
        line = (f"pass {k:2d}: {sum(p.committed):2d} committed (+{len(p.newly_committed)}), "
                f"{len(p.renoised_validator)} undone by a dead end (back to noise)")
        print(line + (" - restart" if p.restarted else ""))
    render_html(res, "sudoku", a.out)
    print(f"{res.status} in {res.passes} passes ({res.backtracks} backtracks); replay written to {a.out}")


if __name__ == "__main__":
    main()
