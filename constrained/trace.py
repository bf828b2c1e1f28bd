"""Traces: a solve replayed pass by pass in one self-contained HTML page.

``render_html(result, task)`` (or ``constrained trace TASK INPUT --out trace.html``) turns a
``Result`` solved with ``trace=True`` into a page with inline CSS and JavaScript only (no
network): the canvas in the task's own shape, committed tokens, tokens re-noised by the
validator and by low confidence in distinct colours, per-position confidence (a bar under each
token, faint shading of open positions) and a per-pass chart, play / pause / step controls, a
pass slider, and the validator's messages at each pass. The renderer takes the Result; the
Result (a plain record, ``constrained/result.py``) knows no renderer.

How a task is drawn is :mod:`constrained.trace_views`: a :class:`TraceView` (grid, graph,
strip, lines or text) from the task's ``trace_view(canvas)`` hook, the view function
registered for its name (peptides: a residue strip without padding; code: the hole drawn as
source in place), or its ``Layout`` (``row``/``col``: a grid, so Sudoku needs no code).
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .errors import ConfigError, InvalidProblem
from .registry import load_task
from .trace_views import KINDS, TraceView, default_view, register_view, view_for
from .vocab import MASK, PAD

if TYPE_CHECKING:
    from .canvas import Canvas
    from .solver import Result
    from .task import Task

__all__ = ["KINDS", "TraceView", "default_view", "register_view", "render_html", "trace_data", "view_for"]
ASSETS = Path(__file__).resolve().parent / "trace_assets"


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

