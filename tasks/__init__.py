"""Task families. Importing this package registers every built-in task."""

from constrained.registry import register_task

from .code import CodeEdit, CodeInfill
from .graphs import GraphColoring, GraphGeneration
from .peptide import Peptide
from .sudoku import Sudoku, SudokuX

register_task("sudoku", Sudoku)
register_task("sudoku-x", SudokuX)
register_task("peptide", Peptide)
register_task("code-infill", CodeInfill)
register_task("code-edit", CodeEdit)
register_task("graph-coloring", GraphColoring)
register_task("graph-gen", GraphGeneration)

__all__ = ["CodeEdit", "CodeInfill", "GraphColoring", "GraphGeneration", "Peptide", "Sudoku", "SudokuX"]
