"""constrained: solve structured problems with discrete diffusion models and exact validators.

>>> from constrained import solve
>>> res = solve("sudoku", "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79")
>>> res.valid  # doctest: +SKIP
True

Names are imported on first use (PEP 562), so ``import constrained`` and the ``constrained``
command's help, task list and input errors do not pay for torch and transformers.
"""

from __future__ import annotations

from .errors import ConfigError, ConstrainedError, InvalidProblem, ModelMismatch
from .lazy import lazy_exports
from .registry import list_tasks, load_task, register_task

__version__ = "0.1.0"

_WHERE = {
    "make_config": ".api",
    "make_solver": ".api",
    "solve": ".api",
    "solve_batch": ".api",
    "solve_with": ".api",
    "Canvas": ".canvas",
    "Layout": ".layout",
    "Report": ".report",
    "Check": ".report",
    "PassRecord": ".result",
    "Result": ".result",
    "Solver": ".solver",
    "SolverConfig": ".solver",
    "Task": ".task",
    "Vocab": ".vocab",
    "render_html": ".trace",
}

__all__ = [
    "Canvas",
    "Check",
    "ConfigError",
    "ConstrainedError",
    "InvalidProblem",
    "Layout",
    "ModelMismatch",
    "PassRecord",
    "Report",
    "Result",
    "Solver",
    "SolverConfig",
    "Task",
    "Vocab",
    "list_tasks",
    "load_task",
    "make_config",
    "make_solver",
    "register_task",
    "render_html",
    "solve",
    "solve_batch",
    "solve_with",
]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
