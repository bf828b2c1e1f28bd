"""Traces: a solve replayed pass by pass in one self-contained HTML page.

``render_html(result, task)`` (or ``result.to_html(task)``, or ``constrained trace TASK INPUT
--out trace.html``) turns a ``Result`` solved with ``trace=True`` into a page with inline
CSS and JavaScript only (no network): the canvas in the task's own shape, committed tokens,
tokens re-noised by the validator and by low confidence in distinct colours, per-position
confidence (a bar under each token, faint shading of open positions) and a per-pass chart,
play / pause / step controls, a pass slider, and the validator's messages at each pass.

How a task is drawn: the renderer hook
--------------------------------------
A task may define ``trace_view(self, canvas) -> TraceView``; ``canvas`` holds the one
problem being traced (batch of 1: its ``meta``, ``peers`` and ``context`` are there). It
returns a :class:`TraceView`, plain data the page draws; four kinds exist:

- ``"grid"``: ``coords[i] = (row, col)``; ``regions[i]`` draws thick borders between cells of
  different regions (Sudoku boxes).
- ``"graph"``: ``coords[i] = (x, y)`` in [0, 1] per node, ``edges`` as position pairs;
  ``palette`` maps a token to the colour its node is filled with (graph colouring).
- ``"strip"``: a wrapping row of tokens (a peptide's residues), ``per_row`` per line,
  ``labels`` under each token (residue numbers).
- ``"lines"``: ``coords[i] = (line, column)``: source code; a position's token is shown as
  text in its line, ordered by column.

Every kind takes ``labels`` (a position's name in the side panel: ``r3c4``, ``node 7``),
``token_text`` (how a token is shown; ``[MASK]`` shows as an empty slot, ``[PAD]`` as
nothing), ``hidden`` (positions not drawn, e.g. padding), and ``before`` / ``after`` (text
shown above and below the canvas: the code around a hole, a peptide's spec).

Without the hook, :func:`default_view` lays the canvas out from its ``Layout``: ``row``
and ``col`` coordinates give a grid (with ``box`` as regions, so Sudoku and Sudoku-X need
no code), ``line`` and ``column`` give source lines, anything else a strip of tokens.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .errors import ConfigError, InvalidProblem
from .registry import load_task
from .vocab import MASK, PAD

if TYPE_CHECKING:
    from .canvas import Canvas
    from .solver import Result
    from .task import Task

KINDS = ("grid", "graph", "strip", "lines")
ASSETS = Path(__file__).resolve().parent / "trace_assets"


@dataclass
class TraceView:
    """How a trace page draws a canvas (see the module docstring for each kind)."""

    kind: str = "strip"
    coords: list[tuple[float, float]] | None = None  # grid (row, col); graph (x, y) in 0..1; lines (ln, col)
    labels: list[str] | None = None  # a name per position, for the side panel and tooltips
    regions: list[int] | None = None  # grid: thick borders between different regions
    edges: list[tuple[int, int]] = field(default_factory=list)  # graph: position pairs
    palette: dict[str, str] = field(default_factory=dict)  # token -> CSS colour filling its position
    token_text: dict[str, str] = field(default_factory=dict)  # token -> text shown
    hidden: list[int] = field(default_factory=list)  # positions not drawn
    per_row: int | None = None  # strip: positions per line
    before: str = ""  # text shown above the canvas
    after: str = ""  # text shown below the canvas

    def check(self, length: int) -> None:
        """Raise ConfigError naming the field that does not fit a canvas of ``length``."""
        if self.kind not in KINDS:
            raise ConfigError(f"trace view kind {self.kind!r} is unknown; use one of {KINDS}")
        if self.kind in ("grid", "graph", "lines") and self.coords is None:
            raise ConfigError(f"a {self.kind!r} trace view needs coords (one pair per position)")
        for name in ("coords", "labels", "regions"):
            v = getattr(self, name)
            if v is not None and len(v) != length:
                raise ConfigError(f"trace view {name} has {len(v)} entries; the canvas has {length}")
        if self.coords is not None and any(len(c) != 2 for c in self.coords):
            raise ConfigError("trace view coords must be pairs")
        for a, b in self.edges:
            if not (0 <= a < length and 0 <= b < length):
                raise ConfigError(f"trace view edge ({a}, {b}) has a position outside [0, {length})")
        if any(not 0 <= h < length for h in self.hidden):
            raise ConfigError(f"trace view hidden has a position outside [0, {length})")
        if self.per_row is not None and self.per_row < 1:
            raise ConfigError(f"trace view per_row must be >= 1, got {self.per_row}")


def default_view(task: Task, length: int) -> TraceView:
    """A view from the task's Layout alone: grid (row/col), source lines (line/column) or a strip."""
    layout = task.layout
    coords = layout.coords if layout.length == length else {}
    if "row" in coords and "col" in coords:
        rows, cols = coords["row"].tolist(), coords["col"].tolist()
        return TraceView(kind="grid", coords=list(zip(rows, cols)),
                         labels=[f"r{r + 1}c{c + 1}" for r, c in zip(rows, cols)],
                         regions=coords["box"].tolist() if "box" in coords else None)
    col_key = "column" if "column" in coords else "col"
    if "line" in coords and col_key in coords:
        lines, cols = coords["line"].tolist(), coords[col_key].tolist()
        return TraceView(kind="lines", coords=list(zip(lines, cols)),
                         labels=[f"line {a + 1}, col {b + 1}" for a, b in zip(lines, cols)])
    return TraceView(kind="strip", labels=[f"#{i}" for i in range(length)], per_row=min(length, 32))


def view_for(task: Task, canvas: Canvas | None, length: int) -> TraceView:
    """The task's own view (its ``trace_view`` hook) or the layout's default."""
    hook = getattr(task, "trace_view", None)
    view = hook(canvas) if hook is not None and canvas is not None else None
    if view is None:
        view = default_view(task, length)
    if not isinstance(view, TraceView):
        raise ConfigError(f"{type(task).__name__}.trace_view returned {type(view).__name__}, not a TraceView")
    view.check(length)
    return view


# ---------------------------------------------------------------------------------------
# the data a page replays
# ---------------------------------------------------------------------------------------
def _problem_canvas(task: Task, result: Result) -> Canvas | None:
    if result.problem is None:
        return None
    try:
        return task.encode([result.problem])
    except InvalidProblem:
        return None


def trace_data(result: Result, task: str | Task, title: str | None = None) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data: frame 0 is the problem, frames 1..N the
    passes of ``result.trace``, and the last frame the Result itself."""
    task = load_task(task)
    if result.trace is None:
        raise ConfigError("this Result has no trace: solve with trace=True (CLI: `constrained trace ...`)")
    if result.error is not None:
        raise ConfigError(f"this Result has no solve to trace: {result.error}")
    trace = result.trace
    L = len(result.tokens)
    for k, rec in enumerate(trace):
        if len(rec.tokens) != L:
            raise ConfigError(f"trace pass {k + 1} has {len(rec.tokens)} tokens; the result has {L}")
    vocab = task.vocab
    if any(not 0 <= t < len(vocab) for t in result.tokens):
        raise ConfigError(f"result tokens do not fit task {task.name!r}'s vocabulary of {len(vocab)}")
    canvas = _problem_canvas(task, result)
    if canvas is not None and canvas.length == L:
        fixed = canvas.fixed[0].tolist()
        start = torch.where(canvas.fixed[0], canvas.tokens[0], vocab.mask_id).tolist()
    else:  # no problem to re-encode: positions committed after pass 1 that it did not commit were given
        canvas = None
        first = trace[0] if trace else None
        fixed = ([bool(c) and i not in set(first.newly_committed) for i, c in enumerate(first.committed)]
                 if first else [False] * L)
        start = [t if f else vocab.mask_id for t, f in zip(result.tokens, fixed)]
    view = view_for(task, canvas, L)

    def ints(xs: list[bool]) -> list[int]:
        return [int(bool(x)) for x in xs]

    frames: list[dict[str, Any]] = [{
        "label": "start", "tokens": start, "committed": ints(fixed), "confidence": None, "new": [],
        "rv": [], "rc": [], "proposed": [], "restarted": False, "messages": [],
    }]
    for k, rec in enumerate(trace):
        frames.append({
            "label": f"pass {k + 1}", "tokens": rec.tokens, "committed": ints(rec.committed),
            "confidence": [round(float(c) * 1000) for c in rec.confidence], "new": rec.newly_committed,
            "rv": rec.renoised_validator, "rc": rec.renoised_confidence,
            "proposed": list(getattr(rec, "proposed", []) or []), "restarted": rec.restarted,
            "messages": rec.messages,
        })
    last = frames[-1]
    frames.append({
        "label": "result", "tokens": list(result.tokens), "committed": [1] * L,
        "confidence": last["confidence"], "new": [], "rv": [], "rc": [], "proposed": [], "restarted": False,
        "messages": result.messages,
        "guess": [i for i, c in enumerate(last["committed"]) if not c],  # filled from the model's last guess
        "violations": result.violations,
    })
    text = {t: t for t in vocab.tokens}
    text[MASK] = ""
    text[PAD] = ""
    text.update(view.token_text)
    solution = task.format_solution(result.solution) if result.solution is not None else ""
    verdict = "solved" if result.valid else "not solved"
    return {
        "title": title or f"{task.name}: {verdict} in {result.passes} passes",
        "task": task.name,
        "vocab": list(vocab.tokens),
        "text": [text[t] for t in vocab.tokens],
        "mask": vocab.mask_id,
        "fixed": ints(fixed),
        "view": asdict(view),
        "frames": frames,
        "result": {"valid": result.valid, "passes": result.passes, "restarts": result.restarts,
                   "messages": result.messages, "violations": result.violations,
                   "tokens": list(result.tokens), "solution": solution},
    }


def _asset(name: str) -> str:
    """The page's template, stylesheet and script (constrained/trace_assets/, shipped in the wheel)."""
    return (ASSETS / name).read_text(encoding="utf-8")


def render_html(result: Result, task: str | Task, path: str | Path | None = None,
                title: str | None = None) -> str:
    """The trace page as one HTML string (inline CSS/JS, no network); written to ``path`` if given."""
    data = trace_data(result, task, title)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    page = (_asset("page.html").replace("%%TITLE%%", html.escape(data["title"]))
            .replace("%%CSS%%", _asset("trace.css")).replace("%%JS%%", _asset("trace.js"))
            .replace("%%DATA%%", payload))
    if path is not None:
        p = Path(path)
        if p.parent and not p.parent.exists():
            raise ConfigError(f"cannot write the trace to {p}: folder {p.parent} does not exist")
        p.write_text(page, encoding="utf-8")
    return page

