"""Patterns that must not occur: runs of one value longer than a limit, and forbidden fixed-length
patterns (a peptide's ``max_run`` and banned motifs such as the N-glycosylation sequon ``N[^P][ST]``).

A pattern is a sequence of elements, each a set of values (a ``[m, V]`` bool matrix, row j the values
element j matches): it occurs at offset o when position o + j holds a value of element j for every j.
Empty positions match nothing, so a partial canvas holds a pattern only where its filled positions
already spell it out: ``violations`` are exact, and ``candidates`` remove a value only where it would
complete a run or a pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from .base import Constraint


class RunCheck(NamedTuple):
    """What :meth:`MaxRun.check` finds (a :class:`~constrained.constraints.Verdict` plus detail).

    violations [B, L] bool, broken [B] bool (some run is too long), length [B, L] long: the length of
    the run each position belongs to (0 at positions whose value does not count), limit [B] long."""

    violations: torch.Tensor
    broken: torch.Tensor
    length: torch.Tensor
    limit: torch.Tensor


def runs(onehot: torch.Tensor, counted: torch.Tensor | None = None
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Runs of one value in ``onehot`` [B, L, V] (only values ``counted`` [V] bool form runs; default
    all). -> (k [B, L] index of each position inside its run, length [B, L] its run's length (0 where
    the value does not count or the position is empty), run_id [B, L] long)."""
    B, L, V = onehot.shape
    oh = onehot if counted is None else onehot * counted.to(onehot.device, onehot.dtype)
    member = oh.sum(-1) > 0.5  # [B, L] holds a counted value
    same = torch.zeros_like(member)
    same[:, 1:] = member[:, 1:] & member[:, :-1] & ((oh[:, 1:] * oh[:, :-1]).sum(-1) > 0.5)
    run_id = (~same).long().cumsum(-1) - 1
    pos = torch.arange(L, device=onehot.device).expand(B, L)
    start = torch.full((B, L), L, dtype=torch.long, device=onehot.device).scatter_reduce(
        1, run_id, pos, reduce="amin")
    total = torch.zeros(B, L, dtype=torch.long, device=onehot.device).scatter_add(1, run_id, member.long())
    return pos - start.gather(1, run_id), total.gather(1, run_id), run_id


class MaxRun(Constraint):
    """No run of one value longer than ``limit`` (consecutive positions holding the same value).

    limit: int, or [B] long per item (a limit of L or more: no limit).
    counted: [V] bool, the values whose runs count (default all; e.g. not padding).
    """

    def __init__(self, limit: int | torch.Tensor, counted: torch.Tensor | None = None):
        self.limit = torch.as_tensor(limit, dtype=torch.long)
        if bool((self.limit < 1).any()):
            raise ValueError(f"a run limit must be >= 1, got {limit}")
        self.counted = counted

    def _limit(self, onehot: torch.Tensor) -> torch.Tensor:
        return self.limit.to(onehot.device).expand(onehot.shape[0])  # [B]

    def check(self, onehot: torch.Tensor, free: torch.Tensor | None = None) -> RunCheck:
        """Every run longer than its limit is broken. Implicated: the free positions that split it
        into legal runs (every (limit+1)-th of the run), or all its free positions when one of
        those is not free. free: [B, L] bool, positions that may be re-chosen (default: all)."""
        B, L, _ = onehot.shape
        limit = self._limit(onehot)
        mr = limit.unsqueeze(-1)  # [B, 1]
        k, length, run_id = runs(onehot, self.counted)
        over = (length > mr) & (length > 0)
        free = torch.ones(B, L, dtype=torch.bool, device=onehot.device) if free is None else free
        breaker = (k % (mr + 1)) == mr
        stuck = torch.zeros(B, L, dtype=torch.long, device=onehot.device).scatter_add(
            1, run_id, (over & breaker & ~free).long()).gather(1, run_id) > 0  # a breaker that cannot change
        return RunCheck(over & free & (breaker | stuck), over.any(-1), length, limit)

    def violations(self, onehot: torch.Tensor, free: torch.Tensor | None = None) -> torch.Tensor:
        return self.check(onehot, free).violations

    def candidates(self, onehot: torch.Tensor) -> torch.Tensor:
        """A value that, at an empty position, would join the filled runs beside it (left, right, or
        both when they hold the same value) into one longer than the limit is removed."""
        B, L, V = onehot.shape
        k, length, _ = runs(onehot, self.counted)
        member = length > 0
        left = torch.zeros(B, L, dtype=torch.long, device=onehot.device)
        left[:, 1:] = torch.where(member[:, :-1], k[:, :-1] + 1, 0)  # run ending just before i
        right = torch.zeros_like(left)
        right[:, :-1] = torch.where(member[:, 1:], length[:, 1:] - k[:, 1:], 0)  # run starting just after i
        left_val = torch.zeros_like(onehot)
        left_val[:, 1:] = onehot[:, :-1]
        right_val = torch.zeros_like(onehot)
        right_val[:, :-1] = onehot[:, 1:]
        count = left.unsqueeze(-1) * left_val + right.unsqueeze(-1) * right_val  # [B, L, V]
        if self.counted is not None:
            count = count * self.counted.to(onehot.device, count.dtype)
        too_long = count + 1 > self._limit(onehot)[:, None, None]
        empty = (onehot.sum(-1) < 0.5).unsqueeze(-1)
        return ~(too_long & empty)

    def messages(self, onehot: torch.Tensor, b: int) -> list[str]:
        c = self.check(onehot)
        if not bool(c.broken[b]):
            return []
        longest = int(c.length[b].max())
        return [f"a run of {longest} equal values (at most {int(c.limit[b])})"]


class PatternCheck(NamedTuple):
    """What :meth:`ForbiddenPatterns.check` finds: violations [B, L] bool, broken [B] bool, and
    first [B, P] long, the first offset at which each pattern occurs (-1: nowhere)."""

    violations: torch.Tensor
    broken: torch.Tensor
    first: torch.Tensor


class ForbiddenPatterns(Constraint):
    """Fixed-length patterns that must occur nowhere.

    patterns: P patterns, each ``[m, V]`` bool (row j: the values element j matches).
    active: [B, P] bool, which patterns each item forbids (default: all, for every item).
    alphabet: [V] bool, the values a position may hold (default: all); an element matching all of
        them (a wildcard) is never blamed, since no re-choice there breaks the pattern.
    names: [P] names for ``messages`` (default ``"pattern p"``).
    """

    def __init__(self, patterns: Sequence[torch.Tensor], active: torch.Tensor | None = None,
                 alphabet: torch.Tensor | None = None, names: Sequence[str] | None = None):
        self.patterns = [p.bool() for p in patterns]
        if active is not None and (active.dim() != 2 or active.shape[1] != len(self.patterns)):
            raise ValueError(f"active must be [B, {len(self.patterns)}], got {tuple(active.shape)}")
        self.active = active
        self.alphabet = alphabet
        self.names = list(names) if names is not None else [f"pattern {p}" for p in range(len(self.patterns))]

    def _windows(self, onehot: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
        """[B, O, m] bool, O = L - m + 1 windows: does the value at offset o + j match element j."""
        hits = (onehot @ pattern.T.to(onehot.device, onehot.dtype)) > 0.5  # [B, L, m]
        m, O = pattern.shape[0], onehot.shape[1] - pattern.shape[0] + 1
        return torch.stack([hits[:, j : j + O, j] for j in range(m)], -1)

    def _active(self, onehot: torch.Tensor, p: int) -> torch.Tensor:
        B = onehot.shape[0]
        if self.active is None:
            return torch.ones(B, dtype=torch.bool, device=onehot.device)
        return self.active[:, p].to(onehot.device)

    def check(self, onehot: torch.Tensor, free: torch.Tensor | None = None) -> PatternCheck:
        """Every occurrence breaks the item. Implicated: the free positions of each occurrence under
        an element that is not a wildcard. free: [B, L] bool (default: all)."""
        B, L, V = onehot.shape
        dev = onehot.device
        viol = torch.zeros(B, L, dtype=torch.bool, device=dev)
        first = torch.full((B, len(self.patterns)), -1, dtype=torch.long, device=dev)
        alphabet = torch.ones(V, dtype=torch.bool, device=dev) if self.alphabet is None else self.alphabet.to(dev)
        for p, pat in enumerate(self.patterns):
            m = pat.shape[0]
            if m > L:
                continue
            O = L - m + 1
            match = self._windows(onehot, pat).all(-1) & self._active(onehot, p)[:, None]  # [B, O]
            wild = (pat.to(dev) | ~alphabet).all(-1)  # [m] elements that match every value
            for j in range(m):
                if not bool(wild[j]):
                    viol[:, j : j + O] |= match
            pos = torch.arange(O, device=dev)
            first[:, p] = torch.where(match.any(-1), torch.where(match, pos, O).amin(-1), -1)
        if free is not None:
            viol &= free
        return PatternCheck(viol, (first >= 0).any(-1), first)

    def violations(self, onehot: torch.Tensor, free: torch.Tensor | None = None) -> torch.Tensor:
        return self.check(onehot, free).violations

    def candidates(self, onehot: torch.Tensor) -> torch.Tensor:
        """At the one empty position of an otherwise complete occurrence, the values its element
        matches are removed."""
        B, L, V = onehot.shape
        dev = onehot.device
        cand = torch.ones(B, L, V, dtype=torch.bool, device=dev)
        empty = onehot.sum(-1) < 0.5
        for p, pat in enumerate(self.patterns):
            m = pat.shape[0]
            if m > L:
                continue
            O = L - m + 1
            count = self._windows(onehot, pat).sum(-1)  # [B, O] elements already matched
            act = self._active(onehot, p)[:, None]
            members = pat.to(dev)
            for j in range(m):
                open_j = empty[:, j : j + O] & (count == m - 1) & act  # [B, O]
                cand[:, j : j + O] &= ~(open_j.unsqueeze(-1) & members[j])
        return cand

    def messages(self, onehot: torch.Tensor, b: int) -> list[str]:
        c = self.check(onehot)
        return [f"{self.names[p]} at position {o + 1}" for p, o in enumerate(c.first[b].tolist()) if o >= 0]
