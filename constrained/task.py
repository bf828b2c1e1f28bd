"""The Task protocol: how a problem family meets the engine.

A task encodes native problems into a :class:`Canvas`, decodes tokens back, says
which positions a validator finds wrong, optionally narrows per-position domains,
and makes training and evaluation data. It never calls the engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from .canvas import Canvas
from .errors import InvalidProblem
from .layout import Layout
from .report import Report
from .vocab import Vocab


class Task(ABC):
    """Base class of every task. Subclasses set ``name``, ``vocab`` and ``default_model``."""

    name: str = ""
    vocab: Vocab
    #: folder name under constrained/models/ of the shipped model, if any
    default_model: str | None = None
    #: canvas length the model is trained for when a task has one layout
    layout: Layout
    #: solver options this task prefers (e.g. sampling temperature for design tasks);
    #: options given to solve()/make_solver() win
    solver_defaults: Mapping[str, Any] = MappingProxyType({})
    #: optional ``"module:function"`` checking one problem given as text without torch (raising
    #: InvalidProblem), so the command line refuses a mistyped problem before torch loads
    input_check: str | None = None
    #: True when the canvas is a finite constraint problem and ``domains`` is sound (it never
    #: removes a value that a solution completing the filled positions uses): the Solver may then
    #: search completely (``SolverConfig.search``) and report ``"infeasible"`` as a proof
    complete_search: bool = False
    #: True when ``domains`` already assumes the values it forces (propagation to a fixpoint): the
    #: complete search then commits forced positions without propagating again
    domains_fixpoint: bool = False
    #: True when content values are interchangeable wherever no fixed position holds them (graph
    #: colours): the complete search then opens a new value only as the smallest unused one, which
    #: keeps one solution of each class of relabellings (and makes check_unique mean "up to them")
    value_symmetry: bool = False

    #: what one problem is called in messages ("puzzle", "spec", "request")
    item_name: str = "problem"
    #: optional hooks a task may define (None when it has none):
    #: ``draw(result, path) -> Path`` writes a picture of a result (``constrained solve --draw``)
    draw: Callable[[Any, str | Path], Path] | None = None
    #: ``trace_view(canvas) -> TraceView``: how the trace page draws this task's canvas
    #: (:mod:`constrained.trace_views`; without it a view registered for the task's name, or a grid)
    trace_view: Callable[[Canvas], Any] | None = None
    #: where the training data comes from, in words, for the model card ``finetune`` writes
    data_card: str | None = None
    #: ``inline_problems(text) -> list``: problems typed on the command line, when a task reads them
    #: differently from a file (default: the text is one problem)
    inline_problems: Callable[[str], list[Any]] | None = None

    # --- problems -------------------------------------------------------------------
    def parse(self, problem: Any) -> Any:
        """One native problem to the form ``encode_parsed`` takes (default: unchanged). Raises
        InvalidProblem naming what is wrong."""
        return problem

    def encode(self, problems: Sequence[Any]) -> Canvas:
        """Native problems (a list) to a canvas: each is parsed (``parse``), then all are encoded
        together (``encode_parsed``). Raises InvalidProblem naming what is wrong, prefixed with
        ``problem K:`` (``item_name``) when the batch holds more than one."""
        if isinstance(problems, (str, bytes, Mapping)) or not isinstance(problems, Sequence):
            raise InvalidProblem(f"encode takes a list of {self.item_name}s, got {type(problems).__name__}; "
                                 f"wrap a single {self.item_name} in a list")
        parsed = []
        for k, p in enumerate(problems):
            try:
                parsed.append(self.parse(p))
            except InvalidProblem as e:
                raise (InvalidProblem(f"{self.item_name} {k}: {e}") if len(problems) > 1 else e) from None
        return self.encode_parsed(parsed)

    def encode_parsed(self, parsed: list[Any]) -> Canvas:
        """Parsed problems (``parse``'s output, one per item) to a canvas. Raises InvalidProblem for a
        problem that parses but does not fit (e.g. too long for the canvas)."""
        raise NotImplementedError(f"task {self.name!r} defines neither encode_parsed nor encode")

    @abstractmethod
    def decode(self, canvas: Canvas, tokens: torch.Tensor) -> list[Any]:
        """Tokens [B, L] back to native solutions."""

    def group_key(self, problem: Any) -> Any:
        """Problems with equal keys can share one canvas batch (same layout)."""
        return None

    # --- constraints ------------------------------------------------------------------
    @abstractmethod
    def validate(self, canvas: Canvas, tokens: torch.Tensor, messages: bool = False) -> Report:
        """Exact check of ``tokens`` [B, L]. ``[MASK]`` marks an empty position: a report
        on a partial canvas implicates only filled positions, and ``ok`` needs a complete,
        valid canvas."""

    def domains(self, canvas: Canvas, tokens: torch.Tensor) -> torch.Tensor | None:
        """[B, L, V] bool candidates left by the filled positions of ``tokens``, or None.

        An override may take a keyword ``within`` ([B, L, V] bool or None): values the caller has
        already ruled out elsewhere (a complete search's refuted values) are False there, and the
        task propagates from it (a Sudoku's hidden singles count it); the caller ANDs it in either way."""
        return None

    def choice_counts(self, canvas: Canvas, allowed: torch.Tensor) -> torch.Tensor | None:
        """Optional branching hint for the complete search: [B, L, V] long, for each candidate
        (position, value) of ``allowed`` [B, L, V] (the undecided positions' candidates) the number
        of alternatives of the smallest choice it belongs to (its position's candidates, or, where a
        value must occur in a group, the places left for it there). The search branches on the
        smallest choice first (fail-first). None: the positions' candidate counts alone."""
        return None

    def prefers_complete_search(self, canvas: Canvas) -> bool:
        """Whether ``search="auto"`` runs the complete search on this batch (default: whenever the task
        allows it). A task may keep large instances, which a one-decision-per-pass search would not
        finish within a budget, for the local search."""
        return self.complete_search

    def explain_empty(self, canvas: Canvas, tokens: torch.Tensor, positions: list[int]) -> str:
        """Why ``positions`` (at least one) have no candidate left on the one-item canvas ``tokens``
        [1, L], in words (``Result.messages`` of an infeasible problem); a task names the clearest."""
        return f"position {positions[0]} has no candidate"

    # --- data -------------------------------------------------------------------------
    def training_example(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """One training item: ``tokens`` [L] (the clean target), ``fixed`` [L] bool, and
        optionally ``context`` [C] / ``allowed`` [L, V]."""
        raise NotImplementedError(f"task {self.name!r} has no training data generator")

    def generate(self, n: int, seed: int = 0, **kwargs: Any) -> list[tuple[Any, Any]]:
        """``n`` (problem, known solution) pairs for evaluation."""
        raise NotImplementedError(f"task {self.name!r} has no problem generator")

    def format_solution(self, solution: Any) -> str:
        """How the CLI prints a solution."""
        return str(solution)

    def read_problems(self, path: Path) -> list[Any]:
        """Problems in a file given to ``constrained solve TASK FILE`` (default: the whole file is one)."""
        return [Path(path).read_text()]
