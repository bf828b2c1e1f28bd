"""Bounded sums: K weighted sums over a canvas, each kept between a lower and an upper bound.

Sum k of item b is ``base[k] + sum_l weights[l, v_l, k]`` over its positions l holding values v_l,
and must lie in ``[lo[b, k], hi[b, k]]`` (a peptide's molecular weight, charge, logP and TPSA
windows are such sums of per-residue contributions; so is any linear combination of them).

On a partial canvas each sum ranges over an interval, from every empty position at its least
weight to every one at its greatest (over the values its allowed values leave): a bound that interval
misses is already broken, whatever the empty positions take. That makes ``violations`` sound on
partial canvases (exact on complete ones) and ``candidates`` sound: a value is removed only when,
placed there, it puts some sum out of reach of every completion.

Variable-length answers: with ``pad`` (the value index of a padding value that weighs nothing and
trails the answer, :class:`~constrained.constraints.TrailingPadding`), ``candidates`` also choose
the length consistently: content at i means the empty positions before i hold content too, padding
at i that every empty position from i on is padding. Those candidates are sound for the two
constraints together (the answer's padding trails), not for the sums alone.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .base import Constraint

INF = float("inf")
#: what counts as nothing, in the sums' units, when picking positions to implicate
EPS = 1e-6


class SumRange(NamedTuple):
    """Where each sum stands on a (partial) canvas: per-position terms and the sums' reachable range.

    contrib      [B, L, K] the weight of each filled position's value (0 where empty)
    tmin, tmax   [B, L, K] the least / greatest weight each empty position can add over its allowed values
                 (0 where filled)
    tmin_content, tmax_content [B, L, K] the same over its content values only (padding left out;
                 +inf / -inf where the position may only be padding, and at filled positions)
    low, high    [B, K] the least / greatest value of each sum over every completion of the filled
                 positions (equal when the canvas is complete)
    """

    contrib: torch.Tensor
    tmin: torch.Tensor
    tmax: torch.Tensor
    tmin_content: torch.Tensor
    tmax_content: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor


class SumCheck(NamedTuple):
    """What :meth:`BoundedSum.check` finds (a :class:`~constrained.constraints.Verdict` plus detail).

    violations [B, L] bool: the positions implicated (see :meth:`BoundedSum.check`)
    broken     [B] bool: some sum is out of reach of every completion
    over       [B, K] how far each sum's least completion lies above ``hi`` (0 when within ``tol``)
    under      [B, K] how far its greatest completion lies below ``lo`` (0 when within ``tol``)
    range      the :class:`SumRange` they were read from
    """

    violations: torch.Tensor
    broken: torch.Tensor
    over: torch.Tensor
    under: torch.Tensor
    range: SumRange


class BoundedSum(Constraint):
    """K weighted sums, each between a lower and an upper bound.

    weights: [L, V, K] float, weight of value v at position l in sum k (float64 keeps sums exact to
        the bounds' tolerance; padding's weights must be 0 when ``pad`` is given).
    lo, hi: [B, K] float, the bounds of each item (``-inf`` / ``inf`` for an open end).
    base: [K] float added to every sum (default 0).
    tol: float or [K], slack on both bounds (rounding of the weights).
    allowed: [B, L, V] bool, the values each position may hold at all (default: all). It bounds what
        an empty position can add, and how far re-choosing a filled one could move a sum.
    pad: value index of trailing padding, or None (see the module docstring).
    localise: at most this many positions implicated per broken sum (see :meth:`check`).
    names: [K] names of the sums for ``messages`` (default ``"sum k"``).

    Raises ValueError on shapes that do not agree or padding that weighs something.
    """

    def __init__(self, weights: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, base: torch.Tensor | None = None,
                 tol: float | torch.Tensor = EPS, allowed: torch.Tensor | None = None, pad: int | None = None,
                 localise: int = 3, names: list[str] | None = None):
        if weights.dim() != 3:
            raise ValueError(f"weights must be [L, V, K], got shape {tuple(weights.shape)}")
        L, V, K = weights.shape
        if lo.dim() != 2 or lo.shape != hi.shape or lo.shape[1] != K:
            raise ValueError(f"lo and hi must both be [B, {K}], got {tuple(lo.shape)} and {tuple(hi.shape)}")
        if allowed is not None and allowed.shape != (lo.shape[0], L, V):
            raise ValueError(f"allowed must be [B, L, V] = {(lo.shape[0], L, V)}, got {tuple(allowed.shape)}")
        if pad is not None and bool(weights[:, pad].ne(0).any()):
            raise ValueError("padding must weigh nothing (weights[:, pad] == 0)")
        if localise < 1:
            raise ValueError(f"localise must be >= 1, got {localise}")
        self.weights = weights
        self._weights32: torch.Tensor | None = None  # the candidates' hot path compares in float32 (with slack)
        self.lo, self.hi = lo.to(weights.dtype), hi.to(weights.dtype)
        self.base = torch.zeros(K, dtype=weights.dtype, device=weights.device) if base is None else base
        self.tol = torch.as_tensor(tol, dtype=weights.dtype, device=weights.device).expand(K)
        self.allowed = allowed
        self.pad = pad
        self.localise = localise
        self.names = names

    def _domain(self, onehot: torch.Tensor) -> torch.Tensor:
        return self.allowed if self.allowed is not None else torch.ones_like(onehot, dtype=torch.bool)

    # --- where the sums stand ------------------------------------------------------------------
    def range(self, onehot: torch.Tensor, within: torch.Tensor | None = None) -> SumRange:
        """The sums' terms and reachable range on ``onehot`` [B, L, V].

        within: [B, L, V] bool, what the empty positions may still take (default: ``allowed``); a
        position it leaves with nothing counts with its ``allowed``."""
        B, L, V = onehot.shape
        dev = onehot.device
        table = self.weights.to(dev)  # [L, V, K]
        K = table.shape[-1]
        empty = onehot.sum(-1) < 0.5
        pos = torch.arange(L, device=dev).expand(B, L)
        contrib = table[pos, onehot.argmax(-1)]  # [B, L, K]
        contrib = torch.where(empty.unsqueeze(-1), 0.0, contrib)
        static = self._domain(onehot)
        dom = static if within is None else torch.where(within.any(-1, keepdim=True), within, static)
        e = empty.nonzero(as_tuple=True)  # only the empty positions need bounds
        rows = dom[e].unsqueeze(-1)  # [N, V, 1]
        tab = table[e[1]]  # [N, V, K]
        if self.pad is None:
            content = rows
        else:
            content = rows.clone()
            content[:, self.pad] = False
        tmin_c = torch.full((B, L, K), INF, dtype=table.dtype, device=dev)
        tmax_c = torch.full((B, L, K), -INF, dtype=table.dtype, device=dev)
        tmin_c[e] = torch.where(content, tab, INF).amin(1)
        tmax_c[e] = torch.where(content, tab, -INF).amax(1)
        zero = torch.zeros((), dtype=table.dtype, device=dev)
        filled = ~empty.unsqueeze(-1)
        if self.pad is None:
            tmin = torch.where(filled, zero, tmin_c)
            tmax = torch.where(filled, zero, tmax_c)
        else:  # padding weighs nothing: a position that may be padding can add 0
            may_pad = torch.zeros(B, L, 1, dtype=torch.bool, device=dev)
            may_pad[e] = rows[:, self.pad]
            tmin = torch.where(filled, zero, torch.where(may_pad, tmin_c.clamp(max=zero), tmin_c))
            tmax = torch.where(filled, zero, torch.where(may_pad, tmax_c.clamp(min=zero), tmax_c))
        base = self.base.to(dev)
        return SumRange(contrib, tmin, tmax, tmin_c, tmax_c, base + (contrib + tmin).sum(1),
                        base + (contrib + tmax).sum(1))

    def _reach(self, where: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The least and greatest weight over each position's ``allowed`` at the positions ``where``
        [B, L] (0 elsewhere): how far re-choosing it could move each sum. -> two [B, L, K]."""
        B, L = where.shape
        table = self.weights.to(where.device)
        e = where.nonzero(as_tuple=True)
        dom = (self.allowed[e] if self.allowed is not None
               else torch.ones(len(e[0]), table.shape[1], dtype=torch.bool, device=where.device)).unsqueeze(-1)
        tab = table[e[1]]  # [N, V, K]
        lo = torch.zeros(B, L, table.shape[-1], dtype=table.dtype, device=where.device)
        hi = torch.zeros_like(lo)
        lo[e] = torch.where(dom, tab, INF).amin(1)
        hi[e] = torch.where(dom, tab, -INF).amax(1)
        return lo, hi

    def _pick(self, score: torch.Tensor, need: torch.Tensor) -> torch.Tensor:
        """score [B, L, K] (how much each position moves a sum the wrong way), need [B, K] (how far
        out of its bounds): the largest contributors, just enough to cover the need, at most
        ``localise`` per sum. -> [B, L] bool."""
        B, L, K = score.shape
        out = torch.zeros(B, L, dtype=torch.bool, device=score.device)
        rank = torch.arange(L, device=score.device)
        for k in range(K):
            n = need[:, k : k + 1]
            if not bool((n > EPS).any()):
                continue
            vals, idx = score[..., k].sort(-1, descending=True)
            before = vals.cumsum(-1) - vals
            pick = (n > EPS) & (before < n) & (rank < self.localise) & (vals > EPS)
            out |= torch.zeros_like(out).scatter(1, idx, pick)
        return out

    # --- the contract ----------------------------------------------------------------------------
    def check(self, onehot: torch.Tensor, within: torch.Tensor | None = None,
              free: torch.Tensor | None = None) -> SumCheck:
        """Which sums are out of reach of every completion, and the positions to blame.

        A sum too high even at its least completion implicates the filled positions of ``free``
        whose value lies furthest above the least of their ``allowed`` (the most a re-choice can
        take off), largest first, just enough to cover the excess and at most ``localise``; a sum
        too low, symmetrically. So a repair re-chooses few positions, those that help most.

        within: [B, L, V] bool, as in :meth:`range`. free: [B, L] bool, the positions that may be
        re-chosen (default: every filled one; a task leaves out its givens)."""
        r = self.range(onehot, within)
        filled = onehot.sum(-1) > 0.5
        free = filled if free is None else free & filled
        smin, smax = self._reach(free)
        dev = onehot.device
        lo, hi, tol = self.lo.to(dev), self.hi.to(dev), self.tol.to(dev)
        over = r.low - hi  # [B, K] > 0: too high even with the least completion
        under = lo - r.high
        over = torch.where(over > tol, over, 0.0)
        under = torch.where(under > tol, under, 0.0)
        f = free.unsqueeze(-1)
        zero = torch.zeros_like(r.contrib)
        viol = self._pick(torch.where(f, r.contrib - smin, zero), over)
        viol |= self._pick(torch.where(f, smax - r.contrib, zero), under)
        return SumCheck(viol, ((over > 0) | (under > 0)).any(-1), over, under, r)

    def violations(self, onehot: torch.Tensor, within: torch.Tensor | None = None,
                   free: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L] bool: the positions :meth:`check` implicates."""
        return self.check(onehot, within, free).violations

    def candidates(self, onehot: torch.Tensor, within: torch.Tensor | None = None, rounds: int = 2) -> torch.Tensor:
        """[B, L, V] bool: ``within`` (default ``allowed``) less, at the empty positions, every value
        that puts some sum out of reach whatever the other empty positions take from what is left;
        the bounds tighten as values go, so ``rounds`` times. Filled positions: ``within`` unchanged."""
        dom = self._domain(onehot) if within is None else within
        empty = (onehot.sum(-1) < 0.5).unsqueeze(-1)
        for _ in range(rounds):
            dom = dom & ~(self._prune(onehot, dom) & empty)
        return dom

    def _prune(self, onehot: torch.Tensor, dom: torch.Tensor) -> torch.Tensor:
        """[B, L, V] bool: the values of the empty positions that leave some sum out of reach whatever
        the other empty positions take from ``dom`` (with ``pad``: lengths chosen consistently)."""
        B, L, V = onehot.shape
        dev = onehot.device
        empty = onehot.sum(-1) < 0.5
        emptyf = empty.unsqueeze(-1)
        r = self.range(onehot, dom)
        tol = self.tol.to(dev)
        lo_w, hi_w = self.lo.to(dev) - tol, self.hi.to(dev) + tol
        zero = torch.zeros((), dtype=r.tmin.dtype, device=dev)
        if self.pad is None:
            pre_lo = pre_hi = zero
        else:
            has_content = torch.isfinite(r.tmin_content) & emptyf
            gap_lo = torch.where(has_content, r.tmin_content - r.tmin, zero)  # what forcing content there adds
            gap_hi = torch.where(has_content, r.tmax_content - r.tmax, zero)
            pre_lo = gap_lo.cumsum(1) - gap_lo  # over the empty positions before i
            pre_hi = gap_hi.cumsum(1) - gap_hi
        # a value at i is out when its weight is above ceil or below floor along some sum
        ceil = hi_w[:, None] - (r.low[:, None] + pre_lo - r.tmin)  # [B, L, K]
        floor = lo_w[:, None] - (r.high[:, None] + pre_hi - r.tmax)
        e = empty.nonzero(as_tuple=True)
        ceil, floor = ceil[e], floor[e]  # [N, K]
        # compared in float32 (the hot path): loosened by more than float32's rounding, so rounding
        # never rules out a value that fits (validators built on ``check`` stay exact)
        slack = 1e-4 + 1e-6 * torch.maximum(ceil.abs(), floor.abs()).nan_to_num(posinf=0.0)
        if self._weights32 is None or self._weights32.device != dev:
            self._weights32 = self.weights.to(dev).float()
        tab = self._weights32[e[1]]  # [N, V, K]
        ceil32, floor32 = (ceil + slack).float().unsqueeze(1), (floor - slack).float().unsqueeze(1)
        out_rows = ((tab > ceil32) | (tab < floor32)).any(-1)  # [N, V]
        if self.pad is not None:  # padding at i: every empty position from i on is padding
            suf_lo = r.tmin.flip(1).cumsum(1).flip(1)
            suf_hi = r.tmax.flip(1).cumsum(1).flip(1)
            pad_out = ((r.low[:, None] - suf_lo > hi_w[:, None]) | (r.high[:, None] - suf_hi < lo_w[:, None])).any(-1)
            out_rows[:, self.pad] = pad_out[e]
        out = torch.zeros(B, L, V, dtype=torch.bool, device=dev)
        out[e] = out_rows
        return out

    def messages(self, onehot: torch.Tensor, b: int, within: torch.Tensor | None = None) -> list[str]:
        c = self.check(onehot, within)
        out = []
        for k in range(c.over.shape[1]):
            if not (c.over[b, k] > 0 or c.under[b, k] > 0):
                continue
            low, high = float(c.range.low[b, k]), float(c.range.high[b, k])
            val = f"{low:g}" if low == high else f"in [{low:g}, {high:g}]"
            side = "above" if c.over[b, k] > 0 else "below"
            name = self.names[k] if self.names else f"sum {k}"
            out.append(f"{name} {val} is {side} its bounds [{float(self.lo[b, k]):g}, {float(self.hi[b, k]):g}]")
        return out
