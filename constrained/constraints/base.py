"""The constraint contract: one rule over a canvas's values that checks and prunes in one object.

Modelled on python-constraint's ``Constraint`` (a call that both tests an assignment and prunes the
domains of the unassigned variables) and outlines' ``Guide`` (what may come next), but vectorised
over a batch. Every constraint sees the same view of a canvas:

``onehot`` [B, L, V] float: 1 at (b, i, v) when position i of item b holds value v, all zeros where
the position is empty (``[MASK]``) or holds a token the constraint does not read. A task builds it
with :func:`value_onehot` (values are a contiguous token range) or :func:`onehot_of` (any token ids).

A task composes constraints: its validator ORs their ``violations``, its ``domains`` ANDs their
``candidates``, and its messages are theirs. A validator that also needs each item's verdict (an
item can break a constraint where no position is implicated, e.g. a sum out of reach whose
positions are all fixed) calls ``check`` once instead: a :class:`Verdict` of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch


class Verdict(NamedTuple):
    """What ``Constraint.check`` finds: ``violations`` [B, L] bool (as ``violations``) and ``broken``
    [B] bool, True for an item whose filled positions already break the constraint."""

    violations: torch.Tensor
    broken: torch.Tensor


def value_onehot(tokens: torch.Tensor, first_id: int, n_values: int) -> torch.Tensor:
    """[B, L] token ids -> [B, L, n] float one-hot of value ``id - first_id``; other ids -> zeros."""
    v = tokens - first_id
    ok = (v >= 0) & (v < n_values)
    oh = torch.zeros(*tokens.shape, n_values, device=tokens.device)
    oh.scatter_(-1, v.clamp(0, n_values - 1).unsqueeze(-1), ok.unsqueeze(-1).float())
    return oh


def onehot_of(tokens: torch.Tensor, value_ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """[B, L] token ids -> [B, L, V] float one-hot, value v being token ``value_ids[v]``; any other
    token (``[MASK]``, a separator) -> zeros."""
    ids = torch.as_tensor(value_ids, dtype=torch.long, device=tokens.device)
    return (tokens.unsqueeze(-1) == ids).float()


class Constraint:
    """A rule over ``onehot`` [B, L, V] (see the module docstring). Subclasses give ``violations``
    and, when they can prune, ``candidates``; ``messages`` says in words what ``violations`` found.
    """

    def violations(self, onehot: torch.Tensor) -> torch.Tensor:
        """[B, L] bool: the filled positions this constraint implicates (empty positions never are)."""
        raise NotImplementedError

    def check(self, onehot: torch.Tensor) -> Verdict:
        """``violations`` and each item's verdict in one call. Default: an item is broken when it has
        a violation; a constraint that implicates only some positions (or none) overrides this."""
        v = self.violations(onehot)
        return Verdict(v, v.any(-1))

    def candidates(self, onehot: torch.Tensor) -> torch.Tensor:
        """[B, L, V] bool: the values each empty position may still take given the filled ones
        (sound: a value some completion satisfying this constraint uses is never removed). What a
        filled position gets is the constraint's own business (callers read the result at empty
        positions only). Default: no pruning."""
        return torch.ones_like(onehot, dtype=torch.bool)

    def messages(self, onehot: torch.Tensor, b: int) -> list[str]:
        """Why item ``b`` violates this constraint, one line per finding (empty when it does not)."""
        return []
