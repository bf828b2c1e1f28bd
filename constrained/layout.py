"""Layout: the shape of a canvas: length, per-position coordinates, constraint groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch


@dataclass(frozen=True, eq=False)
class Layout:
    """Shape of a canvas shared by every item of a batch.

    ``coords`` maps a coordinate name (``row``, ``col``, ``box``, ``node``...) to a
    ``[L]`` long tensor; ``coord_sizes`` gives each coordinate's number of values
    (models embed them). ``groups`` are sets of positions bound by one constraint
    (a Sudoku row, a graph edge); ``group_names`` label them for messages.
    """

    length: int
    coords: Mapping[str, torch.Tensor] = field(default_factory=dict)
    coord_sizes: Mapping[str, int] = field(default_factory=dict)
    groups: Sequence[Sequence[int]] = ()
    group_names: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError(f"layout length must be >= 1, got {self.length}")
        for name, c in self.coords.items():
            if c.shape != (self.length,):
                raise ValueError(f"coordinate {name!r} has shape {tuple(c.shape)}, expected ({self.length},)")
            if name not in self.coord_sizes:
                raise ValueError(f"coordinate {name!r} has no entry in coord_sizes")
            if int(c.min()) < 0 or int(c.max()) >= self.coord_sizes[name]:
                raise ValueError(f"coordinate {name!r} has values outside [0, {self.coord_sizes[name]})")
        for g in self.groups:
            if any(not 0 <= p < self.length for p in g):
                raise ValueError(f"group {list(g)} has a position outside [0, {self.length})")
        if self.group_names and len(self.group_names) != len(self.groups):
            raise ValueError("group_names must name every group")

    @cached_property
    def membership(self) -> torch.Tensor:
        """[G, L] float: 1 where a position belongs to a group."""
        m = torch.zeros(len(self.groups), self.length)
        for gi, g in enumerate(self.groups):
            m[gi, list(g)] = 1.0
        return m

    @cached_property
    def peers(self) -> torch.Tensor:
        """[L, L] bool: positions that share at least one group (not self)."""
        m = self.membership
        p = (m.T @ m) > 0
        p.fill_diagonal_(False)
        return p

    def batch_coords(self, batch: int) -> dict[str, torch.Tensor]:
        """Coordinates expanded to ``[B, L]``."""
        return {k: v.unsqueeze(0).expand(batch, -1) for k, v in self.coords.items()}
