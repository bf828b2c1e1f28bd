"""The constraint contract: one rule over a canvas's values that checks and prunes in one object.

Modelled on python-constraint's ``Constraint`` (a call that both tests an assignment and prunes the
domains of the unassigned variables) and outlines' ``Guide`` (what may come next), but vectorised
over a batch. Every constraint sees the same view of a canvas:

``onehot`` [B, L, V] float: 1 at (b, i, v) when position i of item b holds value v, all zeros where
the position is empty (``[MASK]``) or holds a token the constraint does not read. A task builds it
with :func:`value_onehot` (values are a contiguous token range) or :func:`onehot_of` (any token ids).

A task composes constraints: its validator ORs their ``violations``, its ``domains`` ANDs their
``candidates``, and its messages are theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


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

    def candidates(self, onehot: torch.Tensor) -> torch.Tensor:
        """[B, L, V] bool: the values each empty position may still take given the filled ones
        (sound: a value some completion satisfying this constraint uses is never removed). What a
        filled position gets is the constraint's own business (callers read the result at empty
        positions only). Default: no pruning."""
        return torch.ones_like(onehot, dtype=torch.bool)

    def messages(self, onehot: torch.Tensor, b: int) -> list[str]:
        """Why item ``b`` violates this constraint, one line per finding (empty when it does not)."""
        return []
