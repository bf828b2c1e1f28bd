"""Vectorised all-different constraints over a layout's groups.

Sudoku's rows, columns and boxes, Sudoku-X's diagonals, and a graph's edges (a proper
colouring is all-different on every edge) are all-different groups. Validators and
domain propagation built on these are exact.
"""

from __future__ import annotations

import torch

from .base import Constraint


def _group_counts(membership: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    # membership [G, L] or [B, G, L]; onehot [B, L, n] -> counts [B, G, n]
    if membership.dim() == 2:
        return torch.einsum("gl,bln->bgn", membership, onehot)
    return torch.bmm(membership, onehot)


def _spread(membership: torch.Tensor, per_group: torch.Tensor) -> torch.Tensor:
    # per_group [B, G, n] -> [B, L, n]: sum over the groups a position belongs to
    if membership.dim() == 2:
        return torch.einsum("gl,bgn->bln", membership, per_group)
    return torch.bmm(membership.transpose(1, 2), per_group)


def alldiff_violations(membership: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """[B, L] bool: filled positions whose value repeats inside one of their groups."""
    dup = (_group_counts(membership, onehot) > 1.5).float()  # [B, G, n]
    return ((_spread(membership, dup) * onehot).sum(-1)) > 0


def alldiff_candidates(membership: torch.Tensor, onehot: torch.Tensor, exact: bool = False,
                       within: torch.Tensor | None = None) -> torch.Tensor:
    """[B, L, n] bool: values not yet used by any filled peer of each position.

    A position's own value counts as used (its groups contain it), so callers apply
    this to empty positions only.

    exact: groups with exactly n positions hold every value once (a Sudoku row): a value
    that has a single empty position left in such a group must go there ("hidden single"),
    so that position's candidates shrink to it.

    within: [B, L, n] bool values still allowed at each position by other means (a search's
    refuted values): candidates never leave it, and hidden singles count it.
    """
    return _candidates(membership, onehot, _group_counts(membership, onehot), exact, within)


def _candidates(membership: torch.Tensor, onehot: torch.Tensor, counts: torch.Tensor, exact: bool,
                within: torch.Tensor | None = None) -> torch.Tensor:
    """``alldiff_candidates`` from the groups' value counts [B, G, n] of ``onehot`` (computed once by callers
    that also need them for violations)."""
    used = (counts > 0.5).float()
    cand = _spread(membership, used) < 0.5  # [B, L, n]
    if within is not None:
        cand = cand & within
    if not exact:
        return cand
    n = onehot.shape[-1]
    empty = (onehot.sum(-1, keepdim=True) < 0.5).float()  # [B, L, 1]
    live = cand.float() * empty
    per_group = _group_counts(membership, live)  # [B, G, n]: empty positions that can take each value
    full = (membership.sum(-1) == n).float()  # [G] or [B, G]: permutation groups
    full = full.unsqueeze(-1) if full.dim() == 2 else full[None, :, None]
    single = (per_group == 1).float() * full * (1 - used)  # value still missing, one place left
    forced = (_spread(membership, single) > 0.5) & (live > 0.5)  # [B, L, n]
    has_forced = forced.any(-1, keepdim=True)
    return torch.where(has_forced, forced, cand)


def alldiff_propagate(membership: torch.Tensor, onehot: torch.Tensor, max_rounds: int = 0,
                      within: torch.Tensor | None = None) -> torch.Tensor:
    """[B, L, n] bool: candidates after propagating singles to a fixpoint (exact groups).

    Each round places, virtually, every empty position left with one candidate (a naked single,
    or a hidden single found by ``alldiff_candidates(exact=True)``) and recomputes the
    candidates of the rest, until nothing changes. A placed position's candidates are its
    value; filled positions (in ``onehot``) get the same treatment as in
    ``alldiff_candidates`` (callers use empty positions only). A dead end shows as empty
    candidates: a position with none left, or two forced positions of one group that need the
    same value (both are emptied), so the search learns of a contradiction at once rather
    than passes later. Sound: a value a solution completing ``onehot`` uses is never removed.
    Each round works on the items still changing only.

    max_rounds: 0 = up to L rounds (a fixpoint is reached well before).
    within: [B, L, n] bool, as in ``alldiff_candidates``.
    """
    oh = onehot.float().clone()  # placed values are written into it: never into the caller's
    empty0 = oh.sum(-1) < 0.5  # [B, L]
    cand = alldiff_candidates(membership, oh, exact=True, within=within)
    act = torch.arange(oh.shape[0], device=oh.device)  # items still propagating
    for _ in range(max_rounds or oh.shape[1]):
        if act.numel() == 0:
            break
        m = membership[act] if membership.dim() == 3 else membership
        o, c = oh[act], cand[act]
        empty = o.sum(-1) < 0.5
        single = empty & (c.sum(-1) == 1)
        stuck = (empty & (c.sum(-1) == 0)).any(-1)  # a position with no candidate left: stop there
        go = single.any(-1) & ~stuck
        if not bool(go.all()):
            act, o, c, single = act[go], o[go], c[go], single[go]
            m = m[go] if m.dim() == 3 else m
            if act.numel() == 0:
                break
        placed = o + (c & single.unsqueeze(-1)).float()
        counts = _group_counts(m, placed)  # [b, G, n]: for the clash test and the new candidates
        clash = ((_spread(m, (counts > 1.5).float()) * placed).sum(-1) > 0) & single  # forced twice in a group
        hit = clash.any(-1)
        if bool(hit.any()):  # a dead end: show it as empty candidates and stop that item
            cand[act[hit]] = c[hit] & ~clash[hit].unsqueeze(-1)
            keep = ~hit
            act, placed, counts = act[keep], placed[keep], counts[keep]
            m = m[keep] if m.dim() == 3 else m
            if act.numel() == 0:
                break
        fresh = _candidates(m, placed, counts, exact=True, within=None if within is None else within[act])
        was_placed = (placed.sum(-1, keepdim=True) > 0.5) & empty0[act].unsqueeze(-1)
        oh[act] = placed
        cand[act] = torch.where(was_placed, placed > 0.5, fresh)
    return cand


def alldiff_locked(membership: torch.Tensor, cand: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """[B, L, n] bool: candidates left after "locked candidates" (pointing and claiming).

    For two groups g, h of exactly n positions (each holds every value once): if every empty place
    of value v in g lies inside h, v must go to g's part of h, so it leaves the rest of h (e.g. a
    Sudoku box whose 7s all sit in one row clears the row's other 7s). Sound, like the rest.

    membership [G, L] float (one layout for the batch); cand [B, L, n] bool; empty [B, L] bool.
    """
    n = cand.shape[-1]
    inter, rest, first = _overlaps(membership.float(), n)  # pairs (g, h) of exact groups sharing >= 2 positions
    if inter.shape[0] == 0:
        return cand
    live = (cand & empty.unsqueeze(-1)).float()  # [B, L, n]
    inside = torch.einsum("pl,bln->bpn", inter, live)  # places of v in g that lie in h
    total = torch.einsum("pl,bln->bpn", first, live)  # places of v in g
    locked = (inside > 0.5) & (inside > total - 0.5)  # [B, P, n]: all of g's places of v are in h
    clear = torch.einsum("bpn,pl->bln", locked.float(), rest) > 0.5  # clear v from h outside g
    return cand & ~(clear & empty.unsqueeze(-1))


def alldiff_hall(membership: torch.Tensor, cand: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """[B, L, n] bool: candidates left after Hall-set reasoning in every group of exactly n <= 10
    positions, i.e. generalised arc consistency for all-different (Régin 1994; Hall's marriage
    theorem). For each set S of a group's empty positions whose candidates together number |S|
    ("naked pair", triple, ...), those values leave the group's other positions; a set with fewer
    values than positions is a dead end, shown as empty candidates on the group. The unions of all
    2^n subsets are built as bit masks, doubling the subsets once per position.

    membership [G, L] float (one layout for the batch); cand [B, L, n] bool; empty [B, L] bool.
    """
    n = cand.shape[-1]
    m = membership.float()
    exact = (m.sum(-1) == n).nonzero().squeeze(-1)
    if n > 10 or exact.numel() == 0:
        return cand
    dev = cand.device
    B, L, _ = cand.shape
    cells = _group_cells(m, exact)  # [G, n] positions of each group
    G, S = cells.shape[0], 1 << n
    bit = (1 << torch.arange(n, device=dev)).to(torch.int16)  # [n]
    ge = empty[:, cells]  # [B, G, n]
    values = ((cand[:, cells] & ge.unsqueeze(-1)).to(torch.int16) * bit).sum(-1, dtype=torch.int16)  # [B, G, n]
    ebits = (ge.to(torch.int16) * bit).sum(-1, dtype=torch.int16)[..., None]  # [B, G, 1] empty positions
    union = torch.zeros(B, G, S, dtype=torch.int16, device=dev)
    for j in range(n):  # subsets holding position j: those without it, plus j's values
        union[:, :, 1 << j : 2 << j] = union[:, :, : 1 << j] | values[:, :, j : j + 1]
    subsets = torch.arange(S, device=dev, dtype=torch.int16)
    only_empty = (subsets & ~ebits) == 0  # [B, G, S] subsets of empty positions only
    size = _popcount(subsets & ebits, n)
    width = _popcount(union, n)
    broken = ((width < size) & only_empty).any(-1)  # [B, G]: more positions than values: a dead end
    tight = (width == size) & (size > 0) & only_empty & (subsets != ebits)
    b, g, k = tight.nonzero(as_tuple=True)  # the few tight proper subsets
    outside = ((k[:, None].to(torch.int16) & bit) == 0) & ge[b, g]  # [T, n cells] empty, outside the subset
    vals = (union[b, g, k][:, None] & bit) != 0  # [T, n values]
    drop = torch.zeros(B, G, n, n, device=dev)
    drop.index_put_((b, g), (outside[:, :, None] & vals[:, None, :]).float(), accumulate=True)
    drop = (drop > 0.5) | broken[:, :, None, None]
    flat = torch.zeros(B, L, n, device=dev)
    flat.index_add_(1, cells.reshape(-1), drop.reshape(B, G * n, n).float())
    return cand & ~((flat > 0.5) & empty.unsqueeze(-1))


_CELLS: dict[tuple, torch.Tensor] = {}


def _group_cells(m: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """[G, n] the positions of groups ``rows`` of membership ``m`` (cached: layouts are fixed)."""
    key = (m.detach().cpu().numpy().tobytes(), tuple(m.shape), str(m.device), tuple(rows.tolist()))
    if key not in _CELLS:
        _CELLS[key] = torch.stack([row.nonzero().squeeze(-1) for row in m[rows]])
    return _CELLS[key]


_POPCOUNT: dict[tuple[int, str], torch.Tensor] = {}


def _popcount(x: torch.Tensor, n: int) -> torch.Tensor:
    """Set bits among the low ``n`` of a non-negative integer tensor below ``2**n`` (a table lookup)."""
    key = (n, str(x.device))
    if key not in _POPCOUNT:
        bits = torch.arange(1 << n, device=x.device)
        _POPCOUNT[key] = sum((bits >> j) & 1 for j in range(n)).to(x.dtype)
    return torch.take(_POPCOUNT[key], x.long())


_OVERLAPS: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _overlaps(m: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For the ordered pairs (g, h) of groups of exactly n positions sharing two or more: [P, L] each of
    g & h, h - g and g (cached: layouts are fixed)."""
    key = (m.detach().cpu().numpy().tobytes(), tuple(m.shape), str(m.device), n)
    if key not in _OVERLAPS:
        exact = m[m.sum(-1) == n]
        share = exact @ exact.T
        g, h = ((share >= 2) & ~torch.eye(len(exact), dtype=torch.bool, device=m.device)).nonzero(as_tuple=True)
        _OVERLAPS[key] = (exact[g] * exact[h], exact[h] * (1 - exact[g]), exact[g])
    return _OVERLAPS[key]


class AllDifferent(Constraint):
    """All-different over groups of positions (Sudoku's rows, columns and boxes; Sudoku-X's diagonals).

    membership: [G, L] float, 1 where position l belongs to group g (or [B, G, L], one layout per item).
    exact: groups of exactly V positions hold every value once (a permutation), which enables hidden
    singles, propagation to a fixpoint, locked candidates and Hall sets in ``candidates``.
    names: optional [G] group names for ``messages`` (e.g. "row 3").
    rounds: at most this many rounds of locked candidates and Hall sets in ``candidates`` (0: singles only).
    """

    def __init__(self, membership: torch.Tensor, exact: bool = False, names: list[str] | None = None,
                 rounds: int = 64):
        self.membership = membership.float()
        self.exact = exact
        self.names = names
        self.rounds = rounds

    def violations(self, onehot: torch.Tensor) -> torch.Tensor:
        return alldiff_violations(self.membership, onehot)

    def to(self, device: torch.device | str) -> AllDifferent:
        """This constraint with its membership on ``device``."""
        if self.membership.device == torch.device(device):
            return self
        return AllDifferent(self.membership.to(device), self.exact, self.names, self.rounds)

    def candidates(self, onehot: torch.Tensor, within: torch.Tensor | None = None) -> torch.Tensor:
        """Singles (hidden singles too when ``exact``) propagated to a fixpoint, then, for exact groups,
        locked candidates and Hall sets, repeated until nothing changes. ``within`` [B, L, V] bool:
        values ruled out elsewhere (a search's refuted values), which the propagation counts."""
        m = self.membership
        if not self.exact:
            return alldiff_candidates(m, onehot, within=within)
        cand = alldiff_propagate(m, onehot, within=within)
        empty = onehot.sum(-1) < 0.5
        act = torch.arange(onehot.shape[0], device=onehot.device)
        for _ in range(self.rounds):
            c, e = cand[act], empty[act]
            narrowed = alldiff_hall(m, alldiff_locked(m, c, e), e)
            changed = (narrowed != c).flatten(1).any(-1)
            act, narrowed = act[changed], narrowed[changed]
            if act.numel() == 0:
                break
            cand[act] = alldiff_propagate(m, onehot[act], within=narrowed)
        return cand

    def messages(self, onehot: torch.Tensor, b: int) -> list[str]:
        counts = torch.einsum("gl,ln->gn", self.membership, onehot[b])
        out = []
        for g, v in (counts > 1.5).nonzero().tolist():
            where = self.names[g] if self.names else f"group {g}"
            out.append(f"{where} holds value {v} {int(counts[g, v])} times")
        return out
