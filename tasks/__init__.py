"""Task families. The built-in tasks are registered by name in :mod:`constrained.registry`;
their classes are imported here on first use (``from constrained.tasks import Sudoku``), so
importing this package costs nothing."""

from __future__ import annotations

from constrained.lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
