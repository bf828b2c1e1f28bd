"""Task families. Importing this package registers every built-in task."""

from constrained.registry import register_task

from .sudoku import Sudoku, SudokuX

register_task("sudoku", Sudoku)
register_task("sudoku-x", SudokuX)

__all__ = ["Sudoku", "SudokuX"]
