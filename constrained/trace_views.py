"""How a trace page draws a task's canvas: :class:`TraceView`, and which view each task gets.

A view is plain data the page (``constrained/trace_assets/trace.js``) draws. Five kinds exist:

- ``"grid"``: ``coords[i] = (row, col)``; ``regions[i]`` draws thick borders between cells of
  different regions (Sudoku boxes).
- ``"graph"``: ``coords[i] = (x, y)`` in [0, 1] per node, ``edges`` as position pairs;
  ``palette`` maps a token to the colour its node is filled with (graph colouring).
- ``"strip"``: a wrapping row of tokens (a peptide's residues), ``per_row`` per line,
  ``labels`` under each token (residue numbers).
- ``"lines"``: ``coords[i] = (line, column)``: tokens at fixed places in source lines.
- ``"text"``: the positions flow as text inside ``before`` ... ``after`` (code around a hole):
  each token shows its ``token_text``, a newline in it breaks the line, so a hole is drawn as
  the source it writes, highlighted in place.

Every kind takes ``labels`` (a position's name in the side panel: ``r3c4``, ``node 7``),
``token_text`` (how a token is shown; ``[MASK]`` shows as an empty slot, ``[PAD]`` as
nothing), ``hidden`` (positions not drawn, e.g. padding past a peptide's maximum length), and
``before`` / ``after`` (text around the canvas: a peptide's spec, the code around a hole).

Which view a task gets (:func:`view_for`): the task's own ``trace_view(canvas)`` method if it
has one; else the view function registered for its name in :data:`VIEWS` (``"module:function"``,
imported when first used; :func:`register_view` adds one); else :func:`default_view` from its
``Layout`` (``row``/``col`` coordinates: a grid, so Sudoku needs no code; anything else: a strip).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .vocab import MASK, PAD

if TYPE_CHECKING:
    from .canvas import Canvas
    from .task import Task

KINDS = ("grid", "graph", "strip", "lines", "text")


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
    before: str = ""  # text shown above the canvas (text: before the positions, in the same block)
    after: str = ""  # text shown below the canvas (text: after the positions)
    caption: str = ""  # one line under the title (what is shown: the file and its lines, the spec)

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


# --- the built-in tasks' views ----------------------------------------------------------------
def peptide_view(task: Task, canvas: Canvas) -> TraceView:
    """A residue strip numbered from 1, without the padding past the spec's maximum length (fixed
    ``[PAD]``: not givens, not drawn); a position between the minimum and maximum length that ends
    the peptide shows ``·``. The spec is summarised above the strip."""
    L = canvas.length
    spec = canvas.meta[0] if canvas.meta else None
    n = getattr(spec, "max_len", L)
    lo = getattr(spec, "min_len", n)
    parts = [f"length {lo}" if lo == n else f"length {lo}-{n}"]
    fixed = getattr(spec, "fixed", {}) or {}
    if fixed:
        parts.append("motif " + " ".join(f"{i + 1}:{a}" for i, a in sorted(fixed.items())))
    for key, (a, b) in (getattr(spec, "windows", {}) or {}).items():
        parts.append(f"{key} [{a:g}, {b:g}]")
    if getattr(spec, "max_run", None):
        parts.append(f"max_run {spec.max_run}")
    if getattr(spec, "label", None):
        parts.append(f"label {spec.label}")
    name = getattr(spec, "name", "design")
    return TraceView(kind="strip", labels=[str(i + 1) for i in range(L)], hidden=list(range(n, L)),
                     per_row=min(n, 20), token_text={PAD: "·"}, caption=f"{name}: " + ", ".join(parts))


def code_view(task: Task, canvas: Canvas, context_lines: int = 8) -> TraceView:
    """The hole drawn as the source it writes, in place between the code before and after it
    (up to ``context_lines`` lines each way): each BPE token shows its text (``Ġis`` as `` is``,
    a newline breaking the line), ``[PAD]`` — the unused tail of the hole — nothing."""
    item = canvas.meta[0] if canvas.meta else None
    problem = getattr(item, "problem", None)
    token_bytes = getattr(task, "_bytes", None)
    text: dict[str, str] = {}
    if token_bytes is not None:
        for tok, raw in zip(task.vocab.tokens, token_bytes):
            text[tok] = raw.decode("utf-8", errors="replace")
    text[PAD], text[MASK] = "", ""
    L = canvas.length
    labels = [f"hole token {i + 1}" for i in range(L)]
    if problem is None:
        return TraceView(kind="text", labels=labels, token_text=text)
    head = problem.prefix.split("\n")
    before = "\n".join(head[-context_lines - 1:])
    after = "\n".join(problem.suffix.split("\n")[: context_lines + 1])
    first = problem.first_line
    start = max(1, first - context_lines)
    shown = f"lines {start}-" if start > 1 else "from line 1"
    caption = f"{problem.name}: the hole starts on line {first} ({shown}; code around it in grey)"
    return TraceView(kind="text", labels=labels, token_text=text, before=before, after=after, caption=caption)


#: task name -> its view function ("module:function", imported on first use, or the function):
#: ``fn(task, canvas) -> TraceView`` with ``canvas`` the one traced problem (batch of 1)
VIEWS: dict[str, str | Callable[..., TraceView]] = {
    "peptide": "constrained.trace_views:peptide_view",
    "code-infill": "constrained.trace_views:code_view",
    "code-edit": "constrained.trace_views:code_view",
}


def register_view(task_name: str, fn: str | Callable[..., TraceView]) -> None:
    """Draw ``task_name``'s traces with ``fn(task, canvas) -> TraceView`` (or ``"module:function"``)."""
    VIEWS[task_name] = fn


def _view_function(task_name: str) -> Callable[..., TraceView] | None:
    fn: Any = VIEWS.get(task_name)
    if isinstance(fn, str):
        module, _, attr = fn.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        VIEWS[task_name] = fn
    return fn


def view_for(task: Task, canvas: Canvas | None, length: int) -> TraceView:
    """The task's own view (its ``trace_view`` hook), the view registered for its name, or the
    layout's default."""
    view = None
    if canvas is not None:
        hook = task.trace_view
        if hook is not None:
            view = hook(canvas)
        else:
            fn = _view_function(task.name)
            view = fn(task, canvas) if fn is not None else None
    if view is None:
        view = default_view(task, length)
    if not isinstance(view, TraceView):
        raise ConfigError(f"the trace view of {type(task).__name__} is {type(view).__name__}, not a TraceView")
    view.check(length)
    return view
