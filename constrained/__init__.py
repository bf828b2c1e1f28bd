"""constrained: solve structured problems with discrete diffusion models and exact validators.

>>> from constrained import solve
>>> res = solve("sudoku", "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79")
>>> res.valid  # doctest: +SKIP
True
"""

from .api import make_config, make_solver, solve, solve_batch, solve_with
from .canvas import Canvas
from .errors import ConfigError, ConstrainedError, InvalidProblem, ModelMismatch
from .layout import Layout
from .registry import list_tasks, load_task, register_task
from .report import Report
from .solver import PassRecord, Result, Solver, SolverConfig
from .task import Task
from .vocab import Vocab

__version__ = "0.1.0"

__all__ = [
    "Canvas",
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
    "solve",
    "solve_batch",
    "solve_with",
]
