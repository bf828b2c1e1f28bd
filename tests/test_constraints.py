"""The constraint library (constrained/constraints/): each constraint's violations, candidates and
messages, checked against brute force on tiny random canvases (every completion enumerated):
violations are exact on what they claim, and candidates are sound (a value some completion meeting
the constraint uses is never removed). Deterministic: fixed seeds, a few hundred small cases."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from constrained.constraints import (
    AllDifferent,
    BoundedSum,
    Constraint,
    ForbiddenPatterns,
    MaxRun,
    TrailingPadding,
    Verdict,
    onehot_of,
    value_onehot,
)

torch.set_num_threads(1)


def onehot(rows: list[list[int | None]], V: int) -> torch.Tensor:
    """[B, L, V] float from rows of values (None: empty)."""
    out = torch.zeros(len(rows), len(rows[0]), V)
    for b, row in enumerate(rows):
        for i, v in enumerate(row):
            if v is not None:
                out[b, i, v] = 1.0
    return out


def completions(row: list[int | None], choices: list[list[int]]):
    """Every full row that keeps ``row``'s filled values, empty position i taking ``choices[i]``."""
    empty = [i for i, v in enumerate(row) if v is None]
    for vals in itertools.product(*(choices[i] for i in empty)):
        full = list(row)
        for i, v in zip(empty, vals):
            full[i] = v
        yield full


def assert_sound(cand: torch.Tensor, row: list[int | None], choices: list[list[int]], ok) -> int:
    """Every value a completion meeting ``ok`` puts at an empty position is a candidate there;
    returns how many completions met it."""
    n = 0
    for full in completions(row, choices):
        if ok(full):
            n += 1
            for i, v in enumerate(row):
                if v is None:
                    assert cand[i, full[i]], (row, full, i)
    return n


def random_row(rng: random.Random, L: int, V: int, p_empty: float) -> list[int | None]:
    return [None if rng.random() < p_empty else rng.randrange(V) for _ in range(L)]


# --- the contract ----------------------------------------------------------------------------
def test_onehot_views_read_values_and_leave_the_rest_empty():
    tokens = torch.tensor([[5, 2, 7, 3]])  # values are ids 2..4; 5 and 7 are other tokens
    oh = value_onehot(tokens, 2, 3)
    assert oh.shape == (1, 4, 3)
    assert oh[0].tolist() == [[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0]]
    assert torch.equal(onehot_of(tokens, [2, 3, 4]), oh)


def test_the_default_check_is_violations_and_their_any():
    class Two(Constraint):  # no value 1 twice
        def violations(self, oh):
            return (oh[..., 1] > 0.5) & (oh[..., 1].sum(-1, keepdim=True) > 1.5)

    v = Two().check(onehot([[1, 0, 1], [1, 0, None]], 2))
    assert isinstance(v, Verdict)
    assert v.violations.tolist() == [[True, False, True], [False, False, False]]
    assert v.broken.tolist() == [True, False]
    assert Constraint().candidates(onehot([[0, None]], 2)).all()  # the default prunes nothing


# --- AllDifferent ----------------------------------------------------------------------------
def sudoku4_groups() -> torch.Tensor:
    """[12, 16] the rows, columns and 2 x 2 boxes of a 4 x 4 Sudoku (boxes share two positions with a
    row or column: locked candidates apply)."""
    m = torch.zeros(12, 16)
    for r in range(4):
        for c in range(4):
            i = r * 4 + c
            m[r, i] = m[4 + c, i] = m[8 + (r // 2) * 2 + c // 2, i] = 1
    return m


def group_solutions(groups: torch.Tensor, row: list[int | None], V: int) -> list[list[int]]:
    """Every completion of ``row`` with all-different groups (backtracking)."""
    peers = [set(j for g in groups if g[i] for j in g.nonzero().squeeze(-1).tolist()) - {i} for i in range(len(row))]
    empty = [i for i, v in enumerate(row) if v is None]
    out, full = [], list(row)

    def go(k: int) -> None:
        if k == len(empty):
            out.append(list(full))
            return
        i = empty[k]
        for v in range(V):
            if all(full[j] != v for j in peers[i]):
                full[i] = v
                go(k + 1)
                full[i] = None

    if all_different(groups, [v if v is not None else -1 - i for i, v in enumerate(row)]):
        go(0)
    return out


def all_different(groups: torch.Tensor, full: list[int]) -> bool:
    return all(len(vals) == len(set(vals)) for vals in
               ([full[i] for i in g.nonzero().squeeze(-1).tolist()] for g in groups))


def test_alldifferent_violations_are_the_repeated_values_of_a_group():
    rng = random.Random(0)
    for _ in range(60):
        L, V, G = 6, 3, 3
        groups = torch.tensor([[float(rng.random() < 0.5) for _ in range(L)] for _ in range(G)])
        row = random_row(rng, L, V, 0.3)
        got = AllDifferent(groups).violations(onehot([row], V))[0].tolist()
        want = [v is not None and any(groups[g, i] and sum(1 for j in range(L) if groups[g, j] and row[j] == v) > 1
                                      for g in range(G)) for i, v in enumerate(row)]
        assert got == want, (groups, row)


def test_alldifferent_candidates_are_sound_on_random_groups():
    rng = random.Random(1)
    for _ in range(60):
        L, V, G = 6, 3, 3
        groups = torch.tensor([[float(rng.random() < 0.5) for _ in range(L)] for _ in range(G)])
        row = random_row(rng, L, V, 0.5)
        cand = AllDifferent(groups).candidates(onehot([row], V))[0]
        assert_sound(cand, row, [list(range(V))] * L, lambda full, g=groups: all_different(g, full))


def test_exact_alldifferent_propagation_is_sound_on_small_sudokus():
    groups = sudoku4_groups()
    base = [0, 1, 2, 3, 2, 3, 0, 1, 1, 0, 3, 2, 3, 2, 1, 0]
    rng = random.Random(2)
    solved = pruned = 0
    for _ in range(40):
        perm = rng.sample(range(4), 4)
        row: list[int | None] = [perm[v] for v in base]
        for i in rng.sample(range(16), rng.randint(6, 11)):
            row[i] = None
        if rng.random() < 0.25:  # a wrong given now and then: no completion, candidates may be empty
            i = next(i for i, v in enumerate(row) if v is not None)
            row[i] = (row[i] + 1) % 4
        cand = AllDifferent(groups, exact=True).candidates(onehot([row], 4))[0]
        sols = group_solutions(groups, row, 4)
        for full in sols:
            for i, v in enumerate(row):
                if v is None:
                    assert cand[i, full[i]], (row, full, i)
        solved += bool(sols)
        pruned += int((~cand[[i for i, v in enumerate(row) if v is None]]).sum())
    assert solved >= 20 and pruned > 0  # most cases have solutions to keep; propagation removes values


def test_alldifferent_messages_name_the_group_and_the_count():
    groups = torch.tensor([[1.0, 1, 1, 0], [0, 0, 1, 1]])
    c = AllDifferent(groups, names=["row 1", "box 2"])
    assert c.messages(onehot([[2, 2, 2, 1]], 3), 0) == ["row 1 holds value 2 3 times"]
    assert AllDifferent(groups).messages(onehot([[0, 1, 2, 2]], 3), 0) == ["group 1 holds value 2 2 times"]


# --- TrailingPadding -------------------------------------------------------------------------
PAD = 0


def trails(full: list[int | None], allow_empty: bool = True) -> bool:
    first_pad = next((i for i, v in enumerate(full) if v == PAD), len(full))
    if not allow_empty and first_pad == 0:
        return False
    return all(v in (None, PAD) for v in full[first_pad:])


@pytest.mark.parametrize("allow_empty", [True, False])
def test_trailing_padding_violations_span_first_pad_to_last_content(allow_empty):
    rng = random.Random(3)
    c = TrailingPadding(PAD, allow_empty=allow_empty)
    for _ in range(100):
        row = random_row(rng, 6, 3, 0.3)
        v = c.check(onehot([row], 3))
        got = v.violations[0].tolist()
        first_pad = next((i for i, x in enumerate(row) if x == PAD), 6)
        last = max((i for i, x in enumerate(row) if x not in (None, PAD)), default=-1)
        want = [x is not None and first_pad <= i <= last for i, x in enumerate(row)]
        if not allow_empty and row[0] == PAD:
            want[0] = True
        assert got == want, row
        assert bool(v.broken[0]) == (not trails(row, allow_empty)), row


@pytest.mark.parametrize("allow_empty", [True, False])
def test_trailing_padding_candidates_are_sound_and_exact(allow_empty):
    rng = random.Random(4)
    c = TrailingPadding(PAD, allow_empty=allow_empty)
    for _ in range(100):
        row = random_row(rng, 6, 3, 0.6)
        cand = c.candidates(onehot([row], 3))[0]
        assert_sound(cand, row, [[0, 1, 2]] * 6, lambda full: trails(full, allow_empty))
        if trails(row, allow_empty):  # consistent givens: every candidate some completion uses
            for i, x in enumerate(row):
                if x is None:
                    for v in range(3):
                        if cand[i, v]:
                            assert any(trails(full, allow_empty) and full[i] == v
                                       for full in completions(row, [[0, 1, 2]] * 6)), (row, i, v)


def test_trailing_padding_messages():
    c = TrailingPadding(PAD, allow_empty=False)
    assert c.messages(onehot([[1, 0, None, 2, 0]], 3), 0) == [
        "padding at position 2 before content at position 4 (padding must trail)"]
    assert c.messages(onehot([[0, 0, 0]], 3), 0) == ["the answer is empty (padding at position 1)"]
    assert c.messages(onehot([[1, 2, 0]], 3), 0) == []


# --- BoundedSum ------------------------------------------------------------------------------
def random_sums(rng: random.Random, B: int, L: int, V: int, K: int, pad: int | None):
    """Integer weights [L, V, K] (padding weighs nothing), bounds [B, K] and domains [B, L, V]."""
    w = torch.tensor([[[float(rng.randint(-3, 4)) for _ in range(K)] for _ in range(V)] for _ in range(L)],
                     dtype=torch.float64)
    if pad is not None:
        w[:, pad] = 0.0
    lo = torch.tensor([[rng.choice([-INF, rng.randint(-6, 4)]) for _ in range(K)] for _ in range(B)],
                      dtype=torch.float64)
    hi = torch.tensor([[rng.choice([INF, rng.randint(-2, 8)]) for _ in range(K)] for _ in range(B)],
                      dtype=torch.float64)
    hi = torch.maximum(hi, lo)
    dom = torch.rand(B, L, V, generator=torch.Generator().manual_seed(rng.randrange(1 << 30))) < 0.7
    dom[..., 1] = True  # never an empty domain
    return w, lo, hi, dom


INF = float("inf")


def sums(w: torch.Tensor, full: list[int]) -> list[float]:
    return [float(sum(w[i, v, k] for i, v in enumerate(full))) for k in range(w.shape[-1])]


def within_bounds(w, lo, hi, full, tol=1e-6) -> bool:
    return all(float(lo[k]) - tol <= s <= float(hi[k]) + tol for k, s in enumerate(sums(w, full)))


def sum_cases(seed: int, pad: int | None, n: int = 25):
    """Batches of random partial rows (values drawn from each position's domain)."""
    rng = random.Random(seed)
    B, L, V, K = 4, 5, 4, 2
    for _ in range(n):
        w, lo, hi, dom = random_sums(rng, B, L, V, K, pad)
        rows = []
        for b in range(B):
            row: list[int | None] = []
            for i in range(L):
                allowed = dom[b, i].nonzero().squeeze(-1).tolist()
                row.append(None if rng.random() < 0.5 else rng.choice(allowed))
            rows.append(row)
        choices = [[dom[b, i].nonzero().squeeze(-1).tolist() for i in range(L)] for b in range(B)]
        yield w, lo, hi, dom, rows, choices


def test_bounded_sum_range_is_the_exact_interval_over_completions():
    for w, lo, hi, dom, rows, choices in sum_cases(5, pad=None):
        r = BoundedSum(w, lo, hi, allowed=dom).range(onehot(rows, 4))
        for b, row in enumerate(rows):
            totals = [sums(w, full) for full in completions(row, choices[b])]
            for k in range(w.shape[-1]):
                assert float(r.low[b, k]) == pytest.approx(min(t[k] for t in totals))
                assert float(r.high[b, k]) == pytest.approx(max(t[k] for t in totals))


@pytest.mark.parametrize("pad", [None, 0])
def test_bounded_sum_violations_are_exact_on_complete_rows_and_sound_on_partial_ones(pad):
    for w, lo, hi, dom, rows, choices in sum_cases(6, pad):
        c = BoundedSum(w, lo, hi, allowed=dom, pad=pad, localise=2)
        found = c.check(onehot(rows, 4))
        for b, row in enumerate(rows):
            sols = [full for full in completions(row, choices[b]) if within_bounds(w, lo[b], hi[b], full)]
            if None not in row:
                assert bool(found.broken[b]) == (not sols), row
            elif found.broken[b]:
                assert not sols, row  # broken on a partial row: no completion meets the bounds
            implicated = found.violations[b].nonzero().squeeze(-1).tolist()
            assert all(row[i] is not None for i in implicated)  # only filled positions
            assert len(implicated) <= 2 * int(((found.over[b] > 0) | (found.under[b] > 0)).sum())
            if not found.broken[b]:
                assert not implicated


def test_bounded_sum_implicates_the_largest_contributors_among_the_free_positions():
    w = torch.zeros(5, 3, 1, dtype=torch.float64)
    w[:, 1, 0], w[:, 2, 0] = 1.0, 5.0  # value 0 weighs 0, value 1 weighs 1, value 2 weighs 5
    c = BoundedSum(w, torch.tensor([[-INF]]), torch.tensor([[8.0]]), localise=3)
    oh = onehot([[2, 1, 2, 2, 0]], 3)  # 16: 8 too many
    free = torch.tensor([[False, True, True, True, True]])  # position 0 is a given
    v = c.check(oh, free=free)
    assert v.broken.item() and v.over[0, 0].item() == pytest.approx(8.0)
    assert v.violations[0].nonzero().squeeze(-1).tolist() == [2, 3]  # two heavy ones cover 8; not the given
    assert c.messages(oh, 0) == ["sum 0 16 is above its bounds [-inf, 8]"]
    assert c.check(oh, free=torch.tensor([[True, False, False, True, True]])).violations[0].nonzero().squeeze(
        -1).tolist() == [0, 3]  # at most what the free positions can take off, then stop
    partial = onehot([[2, 2, None, None, None]], 3)
    assert BoundedSum(w, torch.tensor([[-INF]]), torch.tensor([[8.0]]), names=["weight"]).messages(partial, 0) == [
        "weight in [10, 25] is above its bounds [-inf, 8]"]


@pytest.mark.parametrize("pad", [None, 0])
def test_bounded_sum_candidates_are_sound(pad):
    kept = removed = 0
    for w, lo, hi, dom, rows, choices in sum_cases(7, pad, n=30):
        c = BoundedSum(w, lo, hi, allowed=dom, pad=pad)
        cand = c.candidates(onehot(rows, 4))
        assert not (cand & ~dom).any()  # never outside the domain
        for b, row in enumerate(rows):
            def ok(full, w=w, lo=lo[b], hi=hi[b]):
                return within_bounds(w, lo, hi, full) and (pad is None or trails(full))
            assert_sound(cand[b], row, choices[b], ok)
            empty = torch.tensor([v is None for v in row])
            kept += int((cand[b] & empty[:, None]).sum())
            removed += int((dom[b] & ~cand[b] & empty[:, None]).sum())
    assert removed > 0 and kept > 0  # the bounds prune something, and not everything


def test_bounded_sum_candidates_choose_the_length_with_trailing_padding():
    w = torch.zeros(4, 3, 1, dtype=torch.float64)
    w[:, 1], w[:, 2] = 1.0, 2.0  # padding (value 0) weighs nothing
    c = BoundedSum(w, torch.tensor([[3.0]]), torch.tensor([[5.0]]), pad=0)
    cand = c.candidates(onehot([[1, None, None, None]], 3))[0]
    # padding at position 1 ends the answer at 1 (sum 1 < 3): out; at 2 the sum is at most 3: in
    assert cand[1].tolist() == [False, True, True] and cand[2, 0] and cand[3, 0]
    cand = c.candidates(onehot([[2, 2, None, None]], 3))[0]  # 4 already: one more 2 would be 6
    assert cand[2].tolist() == [True, True, False]
    assert cand[3].tolist() == [True, False, False]  # content at 3 needs content at 2 too: 6 at least
    w[:, 1] = -2.0  # now value 1 lowers the sum: padding early leaves it too high
    c = BoundedSum(w, torch.tensor([[-INF]]), torch.tensor([[0.0]]), pad=0)
    cand = c.candidates(onehot([[2, 2, None, None]], 3))[0]
    assert cand[2].tolist() == [False, True, False]  # padding at 2 leaves 4: it takes -2 twice to reach 0
    assert cand[3].tolist() == [False, True, False]
    # content at 2 means content at 1, whose only content value weighs -3 (or it is padding)
    w = torch.zeros(3, 3, 1, dtype=torch.float64)
    w[:, 1], w[:, 2] = -3.0, 1.0
    dom = torch.ones(1, 3, 3, dtype=torch.bool)
    dom[0, 1, 2] = False
    c = BoundedSum(w, torch.tensor([[0.0]]), torch.tensor([[INF]]), allowed=dom, pad=0)
    assert c.candidates(onehot([[2, None, None]], 3))[0, 2].tolist() == [True, False, False]


def test_bounded_sum_bounds_have_the_tolerance_on_both_sides():
    w = torch.zeros(2, 2, 1, dtype=torch.float64)
    w[:, 1] = 1.0
    oh = onehot([[1, 1]], 2)
    for lo, hi, broken in [(2.0, 2.0, False), (0.0, 2 - 5e-7, False), (0.0, 2 - 2e-6, True), (2 + 5e-7, 3.0, False),
                           (2 + 2e-6, 3.0, True)]:
        assert BoundedSum(w, torch.tensor([[lo]]), torch.tensor([[hi]])).check(oh).broken.item() == broken


def test_bounded_sum_candidates_stay_within_and_refuse_bad_input():
    w = torch.zeros(3, 2, 1, dtype=torch.float64)
    w[:, 1] = 1.0
    within = torch.ones(1, 3, 2, dtype=torch.bool)
    within[0, 2, 1] = False
    c = BoundedSum(w, torch.tensor([[2.0]]), torch.tensor([[3.0]]))
    cand = c.candidates(onehot([[1, None, None]], 2), within=within)
    assert cand[0, 1].tolist() == [False, True]  # position 2 may not be 1: position 1 must be
    assert cand[0, 2].tolist() == [True, False]
    with pytest.raises(ValueError, match="padding must weigh nothing"):
        BoundedSum(w, torch.tensor([[0.0]]), torch.tensor([[1.0]]), pad=1)
    with pytest.raises(ValueError, match="lo and hi"):
        BoundedSum(w, torch.tensor([0.0]), torch.tensor([1.0]))


# --- MaxRun ----------------------------------------------------------------------------------
def longest_run(full: list[int | None], counted: set[int]) -> int:
    best = cur = 0
    for i, v in enumerate(full):
        cur = cur + 1 if v in counted and i and full[i - 1] == v else (1 if v in counted else 0)
        best = max(best, cur)
    return best


def test_max_run_violations_break_each_long_run_and_spare_the_short_ones():
    rng = random.Random(8)
    counted = torch.tensor([False, True, True])  # value 0 (padding) forms no runs
    for _ in range(150):
        limit = rng.randint(1, 3)
        row = [rng.choice([None, 0, 1, 1, 2]) for _ in range(7)]
        free = torch.tensor([[rng.random() < 0.8 for _ in range(7)]])
        v = MaxRun(limit, counted=counted).check(onehot([row], 3), free)
        assert bool(v.broken[0]) == (longest_run(row, {1, 2}) > limit), row
        implicated = v.violations[0].nonzero().squeeze(-1).tolist()
        assert all(free[0, i] and row[i] in (1, 2) for i in implicated)
        if v.broken[0]:  # every free position implicated, re-chosen, splits the runs into legal ones
            fixed = [None if i in implicated else x for i, x in enumerate(row)]
            if all(free[0, i] for i in range(7)):
                assert implicated and longest_run(fixed, {1, 2}) <= limit, (row, implicated)


def test_max_run_candidates_are_sound():
    rng = random.Random(9)
    for _ in range(100):
        limit = rng.randint(1, 3)
        row = [rng.choice([None, None, 0, 1, 1, 2]) for _ in range(6)]
        cand = MaxRun(limit, counted=torch.tensor([False, True, True])).candidates(onehot([row], 3))[0]
        assert_sound(cand, row, [[0, 1, 2]] * 6, lambda full, n=limit: longest_run(full, {1, 2}) <= n)


def test_max_run_per_item_limits_and_messages():
    oh = onehot([[1, 1, 1, 0], [1, 1, 1, 0]], 2)
    c = MaxRun(torch.tensor([2, 3]))
    assert c.check(oh).broken.tolist() == [True, False]
    assert c.violations(oh).tolist() == [[False, False, True, False], [False] * 4]
    assert c.messages(oh, 0) == ["a run of 3 equal values (at most 2)"] and c.messages(oh, 1) == []
    cand = c.candidates(onehot([[1, 1, None, 1], [1, 1, None, 0]], 2))
    assert cand[0, 2].tolist() == [True, False] and cand[1, 2].tolist() == [True, True]
    with pytest.raises(ValueError, match=">= 1"):
        MaxRun(0)


# --- ForbiddenPatterns -------------------------------------------------------------------------
def pattern(V: int, *elements: set[int]) -> torch.Tensor:
    m = torch.zeros(len(elements), V, dtype=torch.bool)
    for j, e in enumerate(elements):
        m[j, list(e)] = True
    return m


def occurs(full: list[int | None], elements: list[set[int]]) -> list[int]:
    m = len(elements)
    return [o for o in range(len(full) - m + 1) if all(full[o + j] in elements[j] for j in range(m))]


def test_forbidden_patterns_violations_are_the_occurrences_minus_wildcards():
    rng = random.Random(10)
    V = 4
    alphabet = torch.tensor([False, True, True, True])  # value 0 (padding) is no residue
    for _ in range(150):
        pats = [[{rng.randrange(1, V)}, {1, 2, 3}, set(rng.sample(range(1, V), 2))],  # the middle: a wildcard
                [{rng.randrange(1, V)}, {rng.randrange(1, V)}]]
        active = torch.tensor([[True, rng.random() < 0.5]])
        row = [rng.choice([None, 0, 1, 2, 3]) for _ in range(7)]
        c = ForbiddenPatterns([pattern(V, *p) for p in pats], active, alphabet=alphabet, names=["A", "B"])
        v = c.check(onehot([row], V))
        want = [False] * 7
        hits = []
        for p, els in enumerate(pats):
            if not active[0, p]:
                continue
            for o in occurs(row, els):
                hits.append(f"{'AB'[p]} at position {o + 1}")
                for j in range(len(els)):
                    if els[j] != {1, 2, 3}:
                        want[o + j] = True
        assert v.violations[0].tolist() == want, (pats, row)
        assert bool(v.broken[0]) == bool(hits)
        assert c.messages(onehot([row], V), 0) == [h for h in hits if h.startswith("A")][:1] + \
            [h for h in hits if h.startswith("B")][:1]  # each pattern's first occurrence


def test_forbidden_patterns_candidates_are_sound():
    rng = random.Random(11)
    V = 3
    for _ in range(100):
        pats = [[set(rng.sample(range(V), rng.randint(1, 2))) for _ in range(rng.randint(1, 3))] for _ in range(2)]
        row = random_row(rng, 6, V, 0.5)
        cand = ForbiddenPatterns([pattern(V, *p) for p in pats]).candidates(onehot([row], V))[0]
        assert_sound(cand, row, [list(range(V))] * 6, lambda full, ps=pats: not any(occurs(full, p) for p in ps))


def test_forbidden_patterns_longer_than_the_canvas_never_occur():
    c = ForbiddenPatterns([pattern(2, {1}, {1}, {1})])
    oh = onehot([[1, 1]], 2)
    assert not c.check(oh).broken.any() and c.candidates(onehot([[1, None]], 2)).all()
