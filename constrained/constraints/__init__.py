"""The constraint library: rules that check and prune in one object, which tasks compose.

Every constraint reads a canvas as ``onehot`` [B, L, V] (see :mod:`.base`) and gives ``violations``
[B, L] bool, ``candidates`` [B, L, V] bool and ``messages``. What is here:

- :class:`AllDifferent` (:mod:`.alldifferent`): groups whose values differ (Sudoku units), with
  singles, locked candidates and Hall sets when each group is a permutation.
- :class:`EdgesDiffer` (:mod:`.edges`): the two ends of every edge of a sparse, per-item edge list
  hold different values (graph colouring).
- :class:`TrailingPadding` (:mod:`.padding`): a variable-length answer ends in padding.
"""

from .alldifferent import (
    AllDifferent,
    alldiff_candidates,
    alldiff_hall,
    alldiff_locked,
    alldiff_propagate,
    alldiff_violations,
)
from .base import Constraint, onehot_of, value_onehot
from .edges import EdgesDiffer, filled_values
from .padding import TrailingPadding

__all__ = [
    "AllDifferent",
    "Constraint",
    "EdgesDiffer",
    "TrailingPadding",
    "alldiff_candidates",
    "alldiff_hall",
    "alldiff_locked",
    "alldiff_propagate",
    "alldiff_violations",
    "filled_values",
    "onehot_of",
    "value_onehot",
]
