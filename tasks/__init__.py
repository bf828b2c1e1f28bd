"""Task families. Importing this package registers every built-in task."""

from constrained.registry import register_task

from .peptide import Peptide
from .sudoku import Sudoku, SudokuX

register_task("sudoku", Sudoku)
register_task("sudoku-x", SudokuX)
register_task("peptide", Peptide)

__all__ = ["Peptide", "Sudoku", "SudokuX"]
