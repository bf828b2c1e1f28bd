"""Regenerate docs/trace.png, the trace screenshot in the README: the shipped Sudoku model on
a hard generated puzzle, shown at a middle pass in headless Chromium.

    python docs/make_trace_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import Browser, available  # noqa: E402

from constrained import load_task, render_html, solve  # noqa: E402

# the README's trace example (AI Escargot): several passes (10 when written), dead ends undone
PUZZLE = "1....7.9..3..2...8..96..5....53..9...1..8...26....4...3......1..4......7..7...3.."


def main() -> None:
    why = available()
    if why:
        raise SystemExit(why)
    task = load_task("sudoku")
    res = solve(task, PUZZLE, trace=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "trace.html"
        render_html(res, task, page)
        with Browser(width=1180, height=720) as b:
            b.open(page, f"?pass={max(1, res.passes // 2)}")
            b.wait_for("document.body.dataset.ready === '1'")
            out = b.screenshot(ROOT / "docs" / "trace.png")
    print(f"{'validated' if res.valid else 'not solved'} in {res.passes} passes; wrote {out}")


if __name__ == "__main__":
    main()
