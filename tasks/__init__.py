"""Task families. The built-in tasks are registered by name in :mod:`constrained.registry`;
their classes are imported here on first use (``from constrained.tasks import Sudoku``), so
importing this package costs nothing."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CodeEdit": ".code",
    "CodeInfill": ".code",
    "GraphColoring": ".graphs",
    "GraphGeneration": ".graphs",
    "Peptide": ".peptide",
    "Sudoku": ".sudoku",
    "SudokuX": ".sudoku",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
