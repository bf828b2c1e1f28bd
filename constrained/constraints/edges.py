"""Values differ across each edge of a sparse graph (a proper graph colouring).

Each item of a batch may have its own graph. The edges of the whole batch are one long tensor
``edges`` [E, 3] (item, u, v): positions u and v of item ``item`` must not hold the same value.
Every step is a gather or a scatter over that list, so time and memory grow as O(E + B·L·V): a
graph of 1,000 nodes and 250,000 edges needs no dense [N, N] or [E, N] matrix (the denser
alternative, ``A @ X`` with one-hot values X, costs O(B·L²·V)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .base import Constraint


def filled_values(onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``onehot`` [B, L, V] -> (value index [B, L] long, filled [B, L] bool); empty positions hold 0."""
    peak, val = onehot.max(-1)
    return val, peak > 0.5


class EdgesDiffer(Constraint):
    """The values at the two ends of every edge differ (python-constraint's ``AllDifferentConstraint``
    on each edge, vectorised over a sparse edge list).

    edges: [E, 3] long (item, u, v), the edges of all items concatenated; positions u and v lie in
        0..L-1 of item ``item``. Each undirected edge once, in either orientation (listing both
        orientations is harmless but does the work twice); self-loops are the caller's to refuse.
    labels: optional per-item position labels for ``messages`` (default: the position index).
    node_word, value_word: what ``messages`` calls a position and a value ("nodes", "colour").

    ``violations`` implicates both ends of every edge whose ends hold one value; ``candidates``
    removes from each position the values its filled neighbours hold. The rule is the same at
    every position, so a filled position keeps its own value exactly when none of its edges is
    violated; a search reads the empty positions.

    Memory: besides ``edges``, the ends as flat indices are kept per canvas length (and, for
    ``candidates``, per value count), two [E] long tensors each, so a constraint reused over a
    search's passes pays for them once.
    """

    def __init__(self, edges: torch.Tensor, labels: Sequence[Sequence[Any]] | None = None,
                 node_word: str = "positions", value_word: str = "value"):
        edges = torch.as_tensor(edges, dtype=torch.long)
        if edges.numel() == 0:
            edges = edges.reshape(0, 3)
        if edges.dim() != 2 or edges.shape[1] != 3:
            raise ValueError(f"edges must be [E, 3] (item, u, v), got shape {tuple(edges.shape)}")
        self.edges = edges
        self.labels = labels
        self.node_word, self.value_word = node_word, value_word
        self._flat: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self._rows: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_lists(cls, per_item: Sequence[Sequence[tuple[int, int]] | torch.Tensor],
                   device: torch.device | str | None = None, **kw: Any) -> EdgesDiffer:
        """From one edge list per item (``(u, v)`` pairs or an [E_b, 2] tensor; None or empty: no edges)."""
        parts = []
        for b, e in enumerate(per_item):
            if e is None or len(e) == 0:
                continue
            t = torch.as_tensor(e, dtype=torch.long, device=device).reshape(-1, 2)
            parts.append(torch.cat([torch.full_like(t[:, :1], b), t], 1))
        edges = torch.cat(parts) if parts else torch.zeros(0, 3, dtype=torch.long, device=device)
        return cls(edges, **kw)

    @classmethod
    def from_adjacency(cls, adjacency: torch.Tensor, **kw: Any) -> EdgesDiffer:
        """From per-item adjacency [B, L, L] bool (symmetric: only u < v is read), e.g. ``Canvas.peers``.
        The edges come out in row-major order (item, then u, then v)."""
        return cls(torch.triu(adjacency.bool(), 1).nonzero(), **kw)

    def to(self, device: torch.device | str) -> EdgesDiffer:
        """This constraint with its edges on ``device``."""
        if self.edges.device == torch.device(device):
            return self
        return EdgesDiffer(self.edges.to(device), self.labels, self.node_word, self.value_word)

    def _index(self, L: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(u [E], v [E]): the edges' ends as flat positions ``item * L + u`` of a canvas of length L
        (kept per length and device: a constraint is reused over a search's passes)."""
        key = (L, str(device))
        if key not in self._flat:
            e = self.edges.to(device)
            self._flat[key] = (e[:, 0] * L + e[:, 1], e[:, 0] * L + e[:, 2])
        return self._flat[key]

    def _clashes(self, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(u [E], v [E], [E] bool: the edge's two ends are filled with one value)."""
        u, v = self._index(onehot.shape[1], onehot.device)
        val, filled = filled_values(onehot)
        code = torch.where(filled, val + 1, 0).reshape(-1)  # 1 + value; 0 where empty
        cu = code.index_select(0, u)
        return u, v, (cu == code.index_select(0, v)) & (cu > 0)

    def violations(self, onehot: torch.Tensor) -> torch.Tensor:
        """[B, L] bool: both ends of every edge whose ends hold the same value."""
        B, L = onehot.shape[:2]
        u, v, same = self._clashes(onehot)
        hits = torch.zeros(B * L, device=onehot.device)
        s = same.float()
        hits.index_add_(0, u, s).index_add_(0, v, s)
        return (hits > 0.5).reshape(B, L)

    def candidates(self, onehot: torch.Tensor) -> torch.Tensor:
        """[B, L, V] bool: every value except those a filled neighbour holds. Sound: a completion that
        gives a position a value of a filled neighbour violates their edge."""
        B, L, V = onehot.shape
        u, v = self._index(L, onehot.device)
        key = (L, V, str(onehot.device))
        if key not in self._rows:  # each end's row in a [B·L, V + 1] table (column V: no value)
            self._rows[key] = (u * (V + 1), v * (V + 1))
        ru, rv = self._rows[key]
        val, filled = filled_values(onehot)
        col = torch.where(filled, val, V).reshape(-1)  # an empty neighbour writes to the spare column
        used = torch.zeros(B * L * (V + 1), dtype=torch.bool, device=onehot.device)
        used.index_fill_(0, ru + col.index_select(0, v), True).index_fill_(0, rv + col.index_select(0, u), True)
        return ~used.reshape(B, L, V + 1)[..., :V]

    def messages(self, onehot: torch.Tensor, b: int) -> list[str]:
        """One line per violated edge of item ``b``, in the order of ``edges``: "adjacent nodes 'a' and
        'b' share colour 2" (words and labels as given)."""
        e = self.edges.to(onehot.device)
        e = e[e[:, 0] == b]
        val, filled = filled_values(onehot[b])
        u, v = e[:, 1], e[:, 2]
        same = filled[u] & filled[v] & (val[u] == val[v])
        names = self.labels[b] if self.labels is not None else range(onehot.shape[1])
        return [f"adjacent {self.node_word} {names[i]!r} and {names[j]!r} share {self.value_word} {c}"
                for i, j, c in zip(u[same].tolist(), v[same].tolist(), val[u[same]].tolist())]
