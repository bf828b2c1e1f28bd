"""Complete, model-guided search for finite-domain tasks: one decision level per pass.

A task whose ``domains`` are *sound* (they never remove a value that some solution completing the
filled positions uses; ``Task.complete_search``) can be searched exhaustively. Each pass of
:class:`CompleteSearch` is one decision level of a depth-first search over all items at once:

1. **settle**: propagate (``Task.domains``, told the values refuted so far), commit every forced
   position (a single candidate), and check the canvas with the validator. A dead end (a position
   with no candidate left, or a validator violation) backtracks chronologically to the latest
   decision ``x = v`` still on the stack: it is undone with everything committed after it, and
   replaced by its refutation ``x != v`` (two-way branching), which propagation then uses. A dead
   end with no decision left to refute proves that there is no solution.
2. **decide**: one forward pass of the denoiser serves every item still searching. Each item
   pushes one decision: the position with the fewest candidates (ties broken by the model's
   confidence), its value the model's likeliest candidate. With ``decisions_per_pass > 1`` the
   most confident other positions (p >= ``decision_threshold``) are pushed as further levels of
   their own, so the search stays complete.

This is depth-first search with two-way branching as in constraint programming (Rossi, van Beek &
Walsh, *Handbook of Constraint Programming*, 2006, ch. 4), the fail-first variable order (Haralick
& Elliott 1980, "minimum remaining values") and a learnt value order. A (position, value) refuted
under a prefix stays excluded under it, so the search ends with a solution or with the whole space
refuted. State lives in tensors, one row per item:

    tokens     [B, L] long   the canvas ([MASK] where nothing is committed)
    committed  [B, L] bool
    level      [B, L] long   the decision level that committed each position (-1: given)
    excluded   [B, L, V] int16  the level that refuted each (position, value), -1: not refuted
    depth      [B]    long   decisions on the stack (level d + 1 belongs to stack entry d)
    stack_pos  [B, D] long   the position of each decision (D = L + 1)
    stack_val  [B, D] long   its value
    negated    [B, D] bool   True: the entry is the refutation ``x != v`` of a failed ``x = v``
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from constrained.engine.denoiser import domain_features, predict_logits, reads_domains
from constrained.engine.noise import NoiseProcess

from .canvas import Canvas
from .result import PassRecord, Result, RunStats
from .task import Task

NEG = -1e9
RUNNING, SOLVED, INFEASIBLE, UNSOLVED = 0, 1, 2, 3
STATUS_NAMES = {SOLVED: "solved", INFEASIBLE: "infeasible", UNSOLVED: "unsolved", RUNNING: "unsolved"}


@dataclass
class SearchState:
    """The search's loop state; every field is one row per item (see the module docstring)."""

    tokens: torch.Tensor
    committed: torch.Tensor
    level: torch.Tensor
    excluded: torch.Tensor
    depth: torch.Tensor
    stack_pos: torch.Tensor
    stack_val: torch.Tensor
    negated: torch.Tensor
    status: torch.Tensor  # [B] int8: RUNNING, SOLVED, INFEASIBLE, UNSOLVED
    passes: torch.Tensor  # [B] forward passes (= decision rounds) used
    decisions: torch.Tensor  # [B] decisions pushed
    backtracks: torch.Tensor  # [B]
    first: torch.Tensor  # [B, L] the first solution found (check_unique)
    found: torch.Tensor  # [B] solutions found so far
    guess: torch.Tensor  # [B, L] the model's latest prediction (uniform noise refills from it)
    why: list[str]  # per item: why it is infeasible
    logits: torch.Tensor | None = None  # [B, L, V] each item's latest logits (model_every > 1)

    @classmethod
    def start(cls, canvas: Canvas) -> SearchState:
        B, L = canvas.tokens.shape
        V, dev = len(canvas.vocab), canvas.tokens.device
        mask = canvas.vocab.mask_id
        zeros = torch.zeros(B, dtype=torch.long, device=dev)
        return cls(
            tokens=torch.where(canvas.fixed, canvas.tokens, torch.full_like(canvas.tokens, mask)),
            committed=canvas.fixed.clone(),
            level=torch.full((B, L), -1, dtype=torch.long, device=dev),
            excluded=torch.full((B, L, V), -1, dtype=torch.int16, device=dev),
            depth=zeros.clone(),
            stack_pos=torch.zeros(B, L + 1, dtype=torch.long, device=dev),
            stack_val=torch.zeros(B, L + 1, dtype=torch.long, device=dev),
            negated=torch.zeros(B, L + 1, dtype=torch.bool, device=dev),
            status=torch.zeros(B, dtype=torch.int8, device=dev),
            passes=zeros.clone(), decisions=zeros.clone(), backtracks=zeros.clone(),
            first=canvas.tokens.clone(), found=zeros.clone(), guess=canvas.tokens.clone(),
            why=[""] * B,
        )


class CompleteSearch:
    """Exhaustive, model-ordered depth-first search (see the module docstring).

    ``order``: ``"model"`` ranks ties and values by the denoiser; ``"fixed"`` is the model-free
    baseline (lowest position among the fewest candidates, values in vocabulary order) and never
    calls the model; ``model_every=k`` calls it on every k-th pass of an item only (ranking by its
    latest logits in between). ``check_unique`` goes on past the first solution until a second one is found
    or the space is exhausted.
    """

    def __init__(self, task: Task, model: nn.Module, noise: NoiseProcess, *, max_passes: int,
                 order: str = "model", decisions_per_pass: int = 1, decision_threshold: float = 0.99,
                 check_unique: bool = False, time_limit: float | None = None, seed: int = 0, model_every: int = 1,
                 stats: RunStats | None = None, trace: bool = False) -> None:
        self.task, self.model, self.noise = task, model, noise
        self.max_passes, self.order = max_passes, order
        self.decisions_per_pass, self.decision_threshold = decisions_per_pass, decision_threshold
        self.check_unique, self.time_limit, self.seed = check_unique, time_limit, seed
        self.model_every = model_every
        self.stats = stats if stats is not None else RunStats()
        self.trace = trace
        self._reads_domains = reads_domains(model)
        self._within = "within" in inspect.signature(task.domains).parameters
        self._hints = type(task).choice_counts is not Task.choice_counts

    # -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def run(self, canvas: Canvas, problems: Sequence[Any] | None = None) -> list[Result]:
        t0 = time.perf_counter()
        s = SearchState.start(canvas)
        gen = torch.Generator(device=canvas.tokens.device).manual_seed(self.seed)
        static = canvas.allowed_values()
        coords = {k: v.to(canvas.tokens.device) for k, v in canvas.layout.coords.items()}
        traces: list[list[PassRecord]] = [[] for _ in range(canvas.batch_size)]
        for _ in range(self.max_passes + 1):
            act = (s.status == RUNNING).nonzero().squeeze(-1)
            if act.numel() == 0:
                break
            before = (s.tokens.clone(), s.committed.clone()) if self.trace else None
            live, domains = self._settle(canvas, s, act, static)
            out_of_time = self.time_limit is not None and time.perf_counter() - t0 > self.time_limit
            budget_left = s.passes[live] < self.max_passes
            if out_of_time or not bool(budget_left.all()):
                spent = live if out_of_time else live[~budget_left]
                s.status[spent] = UNSOLVED
                keep = torch.isin(live, spent, invert=True)
                live, domains = live[keep], domains[keep]
            if live.numel():
                self._decide(canvas, s, live, domains, coords, gen)
            if before is not None and live.numel():  # one record per pass: settling, then the decision
                self._record(canvas, s, live, before[0][live], before[1][live], traces)
        s.status[s.status == RUNNING] = UNSOLVED
        results = self._results(canvas, s, problems, time.perf_counter() - t0)
        for r, t in zip(results, traces):
            r.trace = t if self.trace else None
        self.stats.seconds += time.perf_counter() - t0
        return results

    # -------------------------------------------------------------------------------------------
    def _settle(self, canvas: Canvas, s: SearchState, act: torch.Tensor,
                static: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagate, commit forced positions and backtrack dead ends until every item in ``act``
        is solved, proved infeasible, or alive with a decision to make. Returns (the alive
        items, their domains [n, L, V])."""
        alive, alive_dom = [], []
        todo = act
        while todo.numel():
            sub = canvas.select(todo)
            view, committed = s.tokens[todo], s.committed[todo]
            dom = static[todo] & (s.excluded[todo] < 0)
            task_dom = self.task.domains(sub, view, within=dom) if self._within else self.task.domains(sub, view)
            if task_dom is not None:
                dom = dom & task_dom
            free = ~committed
            forced = free & ((dom & free.unsqueeze(-1)).sum(-1) == 1)  # [n, L]
            if self.task.value_symmetry:  # branch only on used values and the smallest unused one
                dom = dom & _open_values(view, committed, canvas.vocab.content_mask().to(dom.device)).unsqueeze(1)
            empty = free & ~(dom & free.unsqueeze(-1)).any(-1)
            rep = self.task.validate(sub, view)
            dead = empty.any(-1) | (rep.violations & committed).any(-1)
            solved = rep.ok & ~dead
            has_forced = forced.any(-1) & ~dead & ~solved
            again = dead.clone()
            if bool(has_forced.any()):  # commit what propagation forces, then settle again
                idx = has_forced.nonzero().squeeze(-1)
                rows, f = todo[idx], forced[idx]
                value = dom[idx].float().argmax(-1)
                s.tokens[rows] = torch.where(f, value, s.tokens[rows])
                s.committed[rows] |= f
                s.level[rows] = torch.where(f, s.depth[rows, None], s.level[rows])
                if self.task.domains_fixpoint:  # the domains already assumed the forced values: check only
                    after = self.task.validate(canvas.select(rows), s.tokens[rows])
                    complete = after.ok
                    broken = (after.violations & s.committed[rows]).any(-1) & ~complete
                    fine = ~complete & ~broken
                    alive.append(rows[fine])
                    alive_dom.append(dom[idx[fine]])
                    if bool(complete.any()):
                        self._on_solution(canvas, s, rows[complete])
                    again[idx[broken | complete]] = True  # complete: under check_unique it went on
                else:
                    again |= has_forced
            if bool(solved.any()):
                self._on_solution(canvas, s, todo[solved])
            if bool(dead.any()):
                self._backtrack(canvas, s, todo[dead], view[dead], empty[dead])
            still = ~(dead | solved | has_forced)
            alive.append(todo[still])
            alive_dom.append(dom[still])
            todo = todo[again | solved]
            todo = todo[s.status[todo] == RUNNING]
        return torch.cat(alive), torch.cat(alive_dom)

    def _backtrack(self, canvas: Canvas, s: SearchState, rows: torch.Tensor, view: torch.Tensor | None = None,
                   empty: torch.Tensor | None = None) -> None:
        """Each item in ``rows`` hit a dead end: refute its latest decision ``x = v`` still on the
        stack (undo it and all after it; ``x != v`` takes its level), or, with none left, it is
        proved infeasible (``view``/``empty``: its canvas and empty positions, for the reason)."""
        if rows.numel() == 0:
            return
        D = s.negated.shape[1]
        idx = torch.arange(D, device=rows.device)
        open_ = ~s.negated[rows] & (idx[None, :] < s.depth[rows, None])  # decisions x = v on the stack
        j = (open_.long() * (idx + 1)).amax(-1) - 1  # [r] the latest, -1: none
        none = j < 0
        if bool(none.any()):
            self._exhausted(canvas, s, rows[none], None if view is None else view[none],
                            None if empty is None else empty[none])
        rows, j = rows[~none], j[~none]
        if rows.numel() == 0:
            return
        mask_id = canvas.vocab.mask_id
        undo = s.level[rows] > j[:, None]  # committed at level j + 1 (the decision) or later
        s.tokens[rows] = torch.where(undo, torch.full_like(s.tokens[rows], mask_id), s.tokens[rows])
        s.committed[rows] &= ~undo
        s.level[rows] = torch.where(undo, torch.full_like(s.level[rows], -1), s.level[rows])
        ex = s.excluded[rows]
        s.excluded[rows] = torch.where(ex > j[:, None, None], torch.full_like(ex, -1), ex)
        s.excluded[rows, s.stack_pos[rows, j], s.stack_val[rows, j]] = (j + 1).to(torch.int16)
        s.negated[rows, j] = True
        s.depth[rows] = j + 1
        s.backtracks[rows] += 1

    def _on_solution(self, canvas: Canvas, s: SearchState, rows: torch.Tensor) -> None:
        """A complete, valid canvas: done, unless uniqueness is asked and this is the first one
        (then it is kept and the search goes on as if it had failed)."""
        if not self.check_unique:
            s.status[rows] = SOLVED
            return
        first = s.found[rows] == 0
        s.first[rows[first]] = s.tokens[rows[first]]
        s.found[rows] += 1
        s.status[rows[~first]] = SOLVED  # a second solution: not unique
        self._backtrack(canvas, s, rows[first])

    def _exhausted(self, canvas: Canvas, s: SearchState, rows: torch.Tensor, view: torch.Tensor | None,
                   empty: torch.Tensor | None) -> None:
        """Items with no decision left to refute: infeasible (by propagation alone when no decision
        was made), or, under check_unique, done with the one solution found."""
        for j, b in enumerate(rows.tolist()):
            if s.found[b] > 0:  # check_unique: the space is exhausted after one solution
                s.status[b] = SOLVED
                continue
            s.status[b] = INFEASIBLE
            if int(s.decisions[b]) == 0 and view is not None and empty is not None:
                where = empty[j].nonzero().squeeze(-1).tolist()
                why = (self.task.explain_empty(canvas.select([b]), view[j : j + 1], where) if where
                       else "the givens break a constraint")
                s.why[b] = f"no solution: {why}"
            else:
                s.why[b] = f"no solution: search exhausted after {int(s.decisions[b])} decisions"

    # -------------------------------------------------------------------------------------------
    def _decide(self, canvas: Canvas, s: SearchState, rows: torch.Tensor, dom: torch.Tensor,
                coords: dict[str, torch.Tensor], gen: torch.Generator) -> None:
        """One forward pass for ``rows``; each pushes one decision (more with decisions_per_pass)."""
        ar = torch.arange(rows.numel(), device=rows.device)
        free = ~s.committed[rows]
        allowed = dom & free.unsqueeze(-1)
        if self.order == "model":
            probs = self._probs(canvas, s, rows, dom, allowed, coords, gen)
        else:  # model-free: values in vocabulary order
            V = allowed.shape[-1]
            probs = allowed.float() * torch.linspace(1.0, 0.5, V, device=allowed.device)
        s.passes[rows] += 1
        big = 1 << 30
        counts = self.task.choice_counts(canvas.select(rows), allowed) if self._hints else None
        if counts is None:  # the positions' candidate counts
            counts = allowed.sum(-1, keepdim=True).expand_as(allowed)
        counts = counts.masked_fill(~allowed, big)  # [n, L, V]
        fewest = (counts == counts.flatten(1).amin(-1)[:, None, None]) & allowed
        V = allowed.shape[-1]
        if self.order == "model":  # fail-first, ties to the model's likeliest (position, value)
            pick = torch.where(fewest, probs, torch.full_like(probs, -1.0)).flatten(1).argmax(-1)
        else:
            pick = fewest.flatten(1).float().argmax(-1)  # the lowest (position, value)
        pos = pick // V
        self._push(s, rows, pos, pick % V)
        conf = probs.amax(-1)  # [n, L]
        extra = self.decisions_per_pass - 1
        if extra > 0 and self.order == "model":  # more near-certain guesses, each a level of its own
            conf = conf.masked_fill(~free, -1.0)
            conf[ar, pos] = -1.0
            top = conf.topk(min(extra, conf.shape[1]), dim=-1)
            for k in range(top.indices.shape[1]):
                ok = top.values[:, k] >= self.decision_threshold
                if bool(ok.any()):
                    p = top.indices[ok, k]
                    self._push(s, rows[ok], p, probs[ar[ok], p].argmax(-1))

    def _probs(self, canvas: Canvas, s: SearchState, rows: torch.Tensor, dom: torch.Tensor,
               allowed: torch.Tensor, coords: dict[str, torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        """[n, L, V] the denoiser's probabilities, restricted to ``allowed``. An item calls the model on
        every ``model_every``-th pass and otherwise ranks by its latest logits."""
        fresh = s.passes[rows] % self.model_every == 0  # [n]
        if s.logits is None:
            s.logits = torch.zeros(*s.tokens.shape, len(canvas.vocab), device=s.tokens.device)
        if bool(fresh.any()):
            upd = rows[fresh]
            free = ~s.committed[upd]
            x = self.noise.refill(s.tokens[upd], free, dom[fresh], s.guess[upd], generator=gen)
            feats = domain_features(dom[fresh], ~free) if self._reads_domains else None
            tf = time.perf_counter()
            logits = predict_logits(self.model, x, canvas.select(upd), coords, feats)
            self.stats.forward_seconds += time.perf_counter() - tf
            self.stats.passes += 1
            s.guess[upd] = logits.argmax(-1)
            s.logits[upd] = logits.float()
        logits = s.logits[rows]
        return torch.softmax(logits.float().masked_fill(~allowed, NEG), -1) * allowed

    @staticmethod
    def _push(s: SearchState, rows: torch.Tensor, pos: torch.Tensor, value: torch.Tensor) -> None:
        d = s.depth[rows]
        s.stack_pos[rows, d] = pos
        s.stack_val[rows, d] = value
        s.negated[rows, d] = False
        s.tokens[rows, pos] = value
        s.committed[rows, pos] = True
        s.level[rows, pos] = d + 1
        s.depth[rows] = d + 1
        s.decisions[rows] += 1

    def _record(self, canvas: Canvas, s: SearchState, act: torch.Tensor, tokens: torch.Tensor,
                committed: torch.Tensor, traces: list[list[PassRecord]]) -> None:
        """One PassRecord per item of ``act`` (those that decided this pass): what the pass committed
        (forced and decided) and what backtracking undid (shown as re-noised by the validator)."""
        sub = canvas.select(act)
        rep = self.task.validate(sub, s.tokens[act], messages=True)
        now = s.committed[act]
        for j, b in enumerate(act.tolist()):
            undone = committed[j] & (~now[j] | (s.tokens[b] != tokens[j]))
            traces[b].append(PassRecord(
                tokens=s.tokens[b].tolist(), committed=now[j].tolist(),
                confidence=[1.0 if c else 0.0 for c in now[j].tolist()],
                newly_committed=(now[j] & ~(committed[j] & ~undone)).nonzero().squeeze(-1).tolist(),
                renoised_validator=undone.nonzero().squeeze(-1).tolist(), renoised_confidence=[],
                restarted=False, messages=rep.messages[j] if rep.messages else [],
                proposed=s.tokens[b].tolist()))

    # -------------------------------------------------------------------------------------------
    def _results(self, canvas: Canvas, s: SearchState, problems: Sequence[Any] | None,
                 seconds: float) -> list[Result]:
        B = canvas.tokens.shape[0]
        final = torch.where((s.found > 0)[:, None], s.first, s.tokens)
        final = torch.where(canvas.fixed, canvas.tokens, final)
        rep = self.task.validate(canvas, final, messages=True)
        solutions = self.task.decode(canvas, final)
        alt = self.task.decode(canvas, s.tokens) if self.check_unique else [None] * B
        out = []
        for b in range(B):
            status = "solved" if s.found[b] > 0 else STATUS_NAMES[int(s.status[b])]
            valid = bool(rep.ok[b])
            if status == "solved" and not valid:  # never call a canvas the validator rejects solved
                status = "unsolved"
            unique = None
            if self.check_unique and status == "solved":
                if s.found[b] >= 2:
                    unique = False
                elif s.found[b] == 1 and s.status[b] == SOLVED:
                    unique = True
            messages = [s.why[b]] if status == "infeasible" else (rep.messages[b] if rep.messages else [])
            out.append(Result(
                problem=None if problems is None else problems[b],
                solution=solutions[b] if status != "infeasible" else None,
                valid=status == "solved",
                status=status,
                passes=int(s.passes[b]),
                decisions=int(s.decisions[b]),
                backtracks=int(s.backtracks[b]),
                unique=unique,
                alternative=alt[b] if unique is False else None,
                violations=rep.violations[b].nonzero().squeeze(-1).tolist() if status != "solved" else [],
                messages=messages,
                seconds=seconds / B,
                tokens=final[b].tolist(),
                checks=[] if status == "infeasible" else rep.item_checks(b),
            ))
        return out


def _open_values(tokens: torch.Tensor, committed: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """[n, V] the values a free position may open under value symmetry: special tokens, the content
    values already committed somewhere, and the smallest content value not yet used (any unused
    value is as good as another). tokens/committed [n, L]; content [V] bool."""
    used = torch.zeros(tokens.shape[0], content.shape[0], dtype=torch.long, device=tokens.device)
    used.scatter_add_(1, tokens, committed.long())
    used = (used > 0) | ~content
    unused = content & ~used
    first = torch.zeros_like(used).scatter_(1, unused.float().argmax(1, keepdim=True), unused.any(1, keepdim=True))
    return used | first


__all__ = ["CompleteSearch", "SearchState"]
