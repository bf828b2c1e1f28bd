"""Graph tasks, validated with networkx: ``graph-coloring`` (colour completion with k colours)
and ``graph-gen`` (graphs generated under structural constraints)."""

from .coloring import ColoringProblem, GraphColoring, is_proper_coloring, parse_coloring
from .generation import GraphGeneration, GraphRequest, parse_request, satisfies, to_networkx

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
