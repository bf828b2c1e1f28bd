"""Graph tasks, validated with networkx: ``graph-coloring`` (colour completion with k colours)
and ``graph-gen`` (graphs generated under structural constraints).

Files: coloring.py (the colouring task) with coloring_problem.py (its problems and their parsing)
and chromatic.py (the fewest colours); generation.py (the generation task) with requests.py (its
requests: parsing, contradictions) and feasibility.py (what a partial graph breaks or can still
repair); generators.py (random graph families), io.py (files, drawing), trace_view.py."""

from .coloring import GraphColoring, is_proper_coloring
from .coloring_problem import ColoringProblem, parse_coloring
from .generation import GraphGeneration
from .requests import GraphRequest, parse_request, satisfies, to_networkx

__all__ = [
    "ColoringProblem",
    "GraphColoring",
    "GraphGeneration",
    "GraphRequest",
    "is_proper_coloring",
    "parse_coloring",
    "parse_request",
    "satisfies",
    "to_networkx",
]
