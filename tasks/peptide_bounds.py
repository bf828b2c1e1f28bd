"""The peptide's property windows as bounded sums, and what no peptide of a spec can meet.

Every property (molecular weight, net charge, Crippen logP, TPSA) is exactly a base plus a sum of
per-residue contributions (:mod:`tasks.peptide_chem`), so each window is a bounded sum over the
canvas (:class:`~constrained.constraints.BoundedSum`; ``[PAD]`` adds nothing). Bounds are propagated
along directions in property space: the property axes (exact, in their units) and every pairwise sum
and difference of two properties scaled by their spread over the residues. An additive property's
reachable range over the completions is an interval along any direction, so a window box projected
onto a direction that misses that interval proves the windows cannot be met together (two correlated
windows, e.g. weight and TPSA, that one alone would not rule out).
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING

import torch

from constrained.constraints import BoundedSum, SumCheck
from constrained.errors import InvalidProblem
from constrained.vocab import Vocab

from .peptide_chem import AMINO_ACIDS, NAMES, PROPERTIES, UNITS, residue_tables

if TYPE_CHECKING:
    from .peptide_spec import PeptideSpec

#: tolerance of a window's ends, in the property's units (RDKit's values are float64 sums)
EPS = 1e-6
INF = float("inf")


@cache
def property_directions() -> tuple[torch.Tensor, list[tuple[str, str, float]]]:
    """Directions in property space along which window bounds are propagated: the property
    axes, then every pairwise sum and difference of two properties, each scaled by its spread
    over the residues. -> dirs [D, P] float64, and (p, q, sign of q) for directions P..D-1."""
    P = len(PROPERTIES)
    scale = residue_tables().table[:, 1].std(-1)  # [P]
    dirs, names = [torch.eye(P, dtype=torch.float64)], []
    for p in range(P):
        for q in range(p + 1, P):
            for sign in (1.0, -1.0):
                w = torch.zeros(P, dtype=torch.float64)
                w[p], w[q] = 1.0 / scale[p], sign / scale[q]
                dirs.append(w[None])
                names.append((PROPERTIES[p], PROPERTIES[q], sign))
    return torch.cat(dirs), names


class PropertyWindows:
    """The windows of a canvas of ``max_len`` positions over ``vocab`` as one :class:`BoundedSum` per
    batch of specs, along every direction of :func:`property_directions` (D of them; the first P
    are the properties themselves).

    table [L, V, D] float64: each residue's contribution at each position along each direction
    (position 0 holds the N-terminal contributions; ``[PAD]``, ``[MASK]`` and label tokens: 0);
    base [D]; tol [D]: the validator's EPS along the axes, and slack for rounding along the scaled
    directions."""

    def __init__(self, max_len: int, vocab: Vocab) -> None:
        L, V, P = max_len, len(vocab), len(PROPERTIES)
        first = vocab.id(AMINO_ACIDS[0])  # residue ids are contiguous from here
        t = residue_tables()
        tab = torch.zeros(L, V, P, dtype=torch.float64)  # [L, V, P]
        tab[0, first : first + 20] = t.table[:, 0].T
        tab[1:, first : first + 20] = t.table[:, 1].T
        self.dirs, self.dir_names = property_directions()  # [D, P]; names of directions P..D-1
        self.table = tab @ self.dirs.T  # [L, V, D]
        self.base = t.base.clone() @ self.dirs.T  # [D]
        self.tol = torch.where(torch.arange(len(self.dirs)) < P, EPS, 1e-5 * self.dirs.abs().sum(-1))
        self.pad = vocab.pad_id

    def projected(self, specs: list[PeptideSpec], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The window boxes projected onto every direction: lo, hi [B, D] float64 (infinite where
        the box is open on the side a direction needs)."""
        lo = torch.tensor([[s.windows.get(k, (-INF, INF))[0] for k in PROPERTIES] for s in specs],
                          dtype=torch.float64, device=device)
        hi = torch.tensor([[s.windows.get(k, (-INF, INF))[1] for k in PROPERTIES] for s in specs],
                          dtype=torch.float64, device=device)
        w = self.dirs.to(device)[None]  # [1, D, P]
        lo, hi = lo[:, None, :], hi[:, None, :]
        zero = torch.zeros((), dtype=w.dtype, device=device)
        plo = torch.where(w > 0, w * lo, torch.where(w < 0, w * hi, zero)).sum(-1)
        phi = torch.where(w > 0, w * hi, torch.where(w < 0, w * lo, zero)).sum(-1)
        return plo, phi

    def constraint(self, specs: list[PeptideSpec], allowed: torch.Tensor, localise: int) -> BoundedSum:
        """The windows of ``specs`` on a canvas whose allowed values are ``allowed`` [B, L, V]: a
        violated window implicates at most ``localise`` residues per direction."""
        dev = allowed.device
        lo, hi = self.projected(specs, dev)
        return BoundedSum(self.table.to(dev), lo, hi, base=self.base.to(dev), tol=self.tol.to(dev), allowed=allowed,
                          pad=self.pad, localise=localise)

    def messages(self, spec: PeptideSpec, found: SumCheck, b: int) -> list[str]:
        """Item ``b``'s broken windows in words: each property window out of reach (its value, or
        its range over the completions), else each pair of windows that cannot both be met."""
        P = len(PROPERTIES)
        low, high = found.range.low[b], found.range.high[b]
        broken = (found.over[b] > 0) | (found.under[b] > 0)  # [D]
        out = []
        for p, key in enumerate(PROPERTIES):
            if broken[p]:
                u = f" {UNITS[key]}" if UNITS[key] else ""
                lo, hi = spec.windows[key]
                val = (f"{float(low[p]):.2f}" if float(low[p]) == float(high[p])
                       else f"in [{float(low[p]):.2f}, {float(high[p]):.2f}]")
                side = "above" if found.over[b, p] > 0 else "below"
                out.append(f"{NAMES[key]} {val}{u} {side} the window [{lo}, {hi}]{u}")
        if not broken[:P].any():
            for d, (kp, kq, sign) in enumerate(self.dir_names, start=P):
                if broken[d]:
                    high_low = "high" if found.over[b, d] > 0 else "low"
                    why = (f"every completion is too {high_low} in {NAMES[kp]} and {NAMES[kq]} combined"
                           if sign > 0 else
                           f"every completion has too {high_low} a {NAMES[kp]} for its {NAMES[kq]}")
                    out.append(f"the {NAMES[kp]} and {NAMES[kq]} windows cannot both be met: {why}")
        return out


def check_windows(spec: PeptideSpec) -> None:
    """Raise InvalidProblem for windows no peptide of ``spec``'s lengths and residues can meet: one
    window outside its property's achievable range, or two that each can be met but not together
    (e.g. a heavy peptide with a small TPSA)."""
    t = residue_tables()
    idx = {a: j for j, a in enumerate(AMINO_ACIDS)}
    for k, (lo, hi) in spec.windows.items():
        p = PROPERTIES.index(k)
        vmin = vmax = float(t.base[p])
        for i, d in enumerate(spec.domains):
            vals = [float(t.table[p, 0 if i == 0 else 1, idx[a]]) for a in d]
            if i >= spec.min_len:  # may be padding: contributes nothing
                vals.append(0.0)
            vmin += min(vals)
            vmax += max(vals)
        if hi < vmin - EPS or lo > vmax + EPS:
            u = f" {UNITS[k]}" if UNITS[k] else ""
            length = (f"{spec.min_len}" if spec.min_len == spec.max_len else f"{spec.min_len}-{spec.max_len}")
            raise InvalidProblem(f"window {k} [{lo}, {hi}]{u} cannot be met: a peptide of length {length} "
                                 f"with the allowed residues has {NAMES[k]} in [{vmin:.2f}, {vmax:.2f}]{u}")
    dirs, names = property_directions()
    P = len(PROPERTIES)
    for w, (kp, kq, _) in zip(dirs[P:], names):
        if kp not in spec.windows or kq not in spec.windows:
            continue
        ends = [spec.windows[k] for k in PROPERTIES if k in (kp, kq)]
        ws = [float(w[PROPERTIES.index(k)]) for k in PROPERTIES if k in (kp, kq)]
        box_lo = sum(c * (lo if c > 0 else hi) for c, (lo, hi) in zip(ws, ends))
        box_hi = sum(c * (hi if c > 0 else lo) for c, (lo, hi) in zip(ws, ends))
        if not (math.isfinite(box_lo) or math.isfinite(box_hi)):
            continue
        proj = t.table.permute(1, 2, 0) @ w  # [2, 20]: each residue along w
        vmin = vmax = float(t.base @ w)
        for i, d in enumerate(spec.domains):
            vals = [float(proj[0 if i == 0 else 1, idx[a]]) for a in d]
            if i >= spec.min_len:
                vals.append(0.0)
            vmin += min(vals)
            vmax += max(vals)
        if box_hi < vmin - 1e-5 or box_lo > vmax + 1e-5:
            wp, wq = spec.windows[kp], spec.windows[kq]
            raise InvalidProblem(f"windows {kp} {list(wp)} and {kq} {list(wq)} cannot be met together: no peptide "
                                 f"of the allowed lengths and residues reaches both (each alone can be met)")
