"""The constraint library: rules that check and prune in one object, which tasks compose.

Every constraint reads a canvas as ``onehot`` [B, L, V] (see :mod:`.base`) and gives ``violations``
[B, L] bool, ``candidates`` [B, L, V] bool, ``messages``, and ``check`` (violations and each item's
verdict, a :class:`Verdict` or a richer record) in one call. What is here:

- :class:`AllDifferent` (:mod:`.alldifferent`): groups whose values differ (Sudoku units), with
  singles, locked candidates and Hall sets when each group is a permutation.
- :class:`EdgesDiffer` (:mod:`.edges`): the two ends of every edge of a sparse, per-item edge list
  hold different values (graph colouring).
- :class:`TrailingPadding` (:mod:`.padding`): a variable-length answer ends in padding.
- :class:`BoundedSum` (:mod:`.sums`): K per-position weighted sums, each between a lower and an
  upper bound (a peptide's property windows), with bounds over the completions of a partial canvas.
- :class:`MaxRun` and :class:`ForbiddenPatterns` (:mod:`.patterns`): no run of one value longer than
  a limit; fixed-length patterns of value sets (``N[^P][ST]``) that must occur nowhere.
"""

from .alldifferent import (
    AllDifferent,
    alldiff_candidates,
    alldiff_hall,
    alldiff_locked,
    alldiff_propagate,
    alldiff_violations,
)
from .base import Constraint, Verdict, onehot_of, value_onehot
from .edges import EdgesDiffer, filled_values
from .padding import TrailingPadding
from .patterns import ForbiddenPatterns, MaxRun, PatternCheck, RunCheck, runs
from .sums import BoundedSum, SumCheck, SumRange

__all__ = [
    "AllDifferent",
    "BoundedSum",
    "Constraint",
    "EdgesDiffer",
    "ForbiddenPatterns",
    "MaxRun",
    "PatternCheck",
    "RunCheck",
    "SumCheck",
    "SumRange",
    "TrailingPadding",
    "Verdict",
    "alldiff_candidates",
    "alldiff_hall",
    "alldiff_locked",
    "alldiff_propagate",
    "alldiff_violations",
    "filled_values",
    "onehot_of",
    "runs",
    "value_onehot",
]
