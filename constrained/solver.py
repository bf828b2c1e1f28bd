"""The Solver: prior -> (denoise -> commit -> validate -> re-noise)* -> Result.

Four mechanisms act on top of the model, each switchable so its effect can be
measured (``SolverConfig``):

- ``domains``: candidates left by the givens and committed tokens mask the logits;
- ``validator_renoise``: positions the validator implicates go back to noise;
- ``backjump``: validator re-noising undoes the latest pass holding an implicated token
  and everything committed after it (chronological backjumping, with each pass as a
  decision level), barring the failed values at that level until an earlier level
  changes; off, it re-noises only the implicated positions;
- ``tabu``: a value that failed at a position is barred there (for ``tabu`` passes when
  not backjumping);
- ``restarts``: an item that stops making progress starts again from the prior,
  sampling with temperature so it takes another path.

Low-confidence re-noising (self-correction) is a fifth, off by default.

``length_search`` (off by default) is for variable-length canvases, whose content ends in a run
of the sampler's ``defer_token`` (``[PAD]``): the first attempt lets the model end the content
where it will; each restart then fixes the length to the next likeliest one the model itself
gave on its first pass (P(position n is [PAD]) = P(length <= n)), so the search tries other
lengths in the model's order instead of rewriting the same over-long content.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from constrained.engine.denoiser import domain_features, predict_logits, reads_domains
from constrained.engine.noise import NoiseProcess
from constrained.engine.samplers import Sampler

from .canvas import Canvas
from .errors import ConfigError
from .renoise import backjump, low_confidence_positions, update_tabu, validator_positions
from .report import Check
from .task import Task


@dataclass
class SolverConfig:
    max_passes: int = 64
    sampler: Sampler = field(default_factory=Sampler)
    domains: bool = True
    validator_renoise: bool = True
    backjump: bool = True
    tabu: int = 3  # passes a failed (position, value) stays barred without backjump; 0 turns tabu off
    restarts: bool = True
    patience: int = 8  # passes without a new best before a restart
    restart_temperature: float = 1.0
    uniform_redraw: float = 0.0  # uniform noise: share of the corruption level re-drawn at random each pass
    confidence_renoise: float | None = None  # re-noise committed tokens whose probability falls below this
    length_search: bool = False  # restarts fix the content's length (needs sampler.defer_token)
    trace: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_passes < 1:
            raise ConfigError(f"max_passes must be >= 1, got {self.max_passes}")
        if self.tabu < 0:
            raise ConfigError(f"tabu must be >= 0, got {self.tabu}")
        if self.patience < 1:
            raise ConfigError(f"patience must be >= 1, got {self.patience}")
        if self.confidence_renoise is not None and not 0 < self.confidence_renoise < 1:
            raise ConfigError(f"confidence_renoise must be in (0, 1), got {self.confidence_renoise}")
        if self.length_search and self.sampler.defer_token is None:
            raise ConfigError("length_search needs the sampler's defer_token (the token that ends the "
                              "content, e.g. [PAD]); set defer_token or turn length_search off")

    @classmethod
    def model_only(cls, **kw: Any) -> SolverConfig:
        """The bare model: no domains, no validator re-noising, no tabu, no restarts."""
        return cls(domains=False, validator_renoise=False, backjump=False, tabu=0, restarts=False, **kw)


@dataclass
class PassRecord:
    """One pass of one item, for traces."""

    tokens: list[int]  # canvas after the pass ([MASK] where uncommitted)
    committed: list[bool]
    confidence: list[float]
    newly_committed: list[int]
    renoised_validator: list[int]
    renoised_confidence: list[int]
    restarted: bool
    messages: list[str]
    proposed: list[int] = field(default_factory=list)  # after commit, before re-noising: what went back
    length: int | None = None  # the content length this pass was held to (length_search), None: free


@dataclass
class RunStats:
    """Where a run's time went: the model forward vs everything else (sampler, domains,
    validator, re-noising)."""

    seconds: float = 0.0
    forward_seconds: float = 0.0
    passes: int = 0

    @property
    def overhead_share(self) -> float:
        return 0.0 if self.seconds == 0 else 1.0 - self.forward_seconds / self.seconds


@dataclass
class Result:
    """What a solve returns. ``valid`` is True only if the task's validator passed."""

    problem: Any
    solution: Any
    valid: bool
    passes: int
    restarts: int = 0
    violations: list[int] = field(default_factory=list)  # positions still implicated
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0
    trace: list[PassRecord] | None = None
    tokens: list[int] = field(default_factory=list)
    error: str | None = None  # why the problem could not be encoded (invalid input)
    checks: list[Check] = field(default_factory=list)  # the validator's named checks on the answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "solution": self.solution,
            "valid": self.valid,
            "passes": self.passes,
            "restarts": self.restarts,
            "violations": self.violations,
            "messages": self.messages,
            "error": self.error,
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_html(self, task: str | Task, path: str | Path | None = None, title: str | None = None) -> str:
        """A self-contained HTML page replaying this solve pass by pass (needs ``trace=True``);
        written to ``path`` when given. See :mod:`constrained.trace`."""
        from .trace import render_html  # noqa: PLC0415 (only traces need it)

        return render_html(self, task, path=path, title=title)


class Solver:
    """Runs a denoiser under a task's constraints."""

    def __init__(self, task: Task, model: nn.Module, noise: NoiseProcess,
                 config: SolverConfig | None = None, device: str | torch.device = "cpu") -> None:
        self.task = task
        self.model = model.to(device).eval()
        self.noise = noise
        self.config = config or SolverConfig()
        self.device = torch.device(device)
        self.stats = RunStats()  # accumulated over every run() of this solver
        self._reads_domains = reads_domains(model)

    # -------------------------------------------------------------------------------
    @torch.no_grad()
    def run(self, canvas: Canvas, problems: Sequence[Any] | None = None) -> list[Result]:
        cfg, task, noise = self.config, self.task, self.noise
        t0 = time.perf_counter()
        canvas = canvas.to(self.device)
        B, L = canvas.tokens.shape
        V = len(canvas.vocab)
        mask_id = canvas.vocab.mask_id
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        fixed = canvas.fixed
        base_domain = canvas.domain() & ~fixed.unsqueeze(-1) | _one_hot_mask(canvas.tokens, V) & fixed.unsqueeze(-1)
        coords = {k: v.to(self.device) for k, v in canvas.layout.coords.items()}

        x = noise.prior(canvas.tokens, fixed, base_domain, gen)  # [B, L]
        committed = fixed.clone()
        level = torch.full((B, L), -1, dtype=torch.long, device=self.device)  # pass that committed each token
        tabu = torch.zeros(B, L, V, dtype=torch.int16, device=self.device)  # > 0: value barred at position
        temp = torch.full((B,), float(cfg.sampler.temperature), device=self.device)
        done = torch.zeros(B, dtype=torch.bool, device=self.device)
        passes = torch.zeros(B, dtype=torch.long, device=self.device)
        restarts = torch.zeros(B, dtype=torch.long, device=self.device)
        best = committed.sum(-1)
        since_best = torch.zeros(B, dtype=torch.long, device=self.device)
        last_pred = x.clone()
        traces: list[list[PassRecord]] = [[] for _ in range(B)] if cfg.trace else []
        end_id = cfg.sampler.defer_token
        length = torch.full((B,), -1, dtype=torch.long, device=self.device)  # -1: the model's choice
        length_rank: torch.Tensor | None = None  # [B, L + 1] lengths, likeliest first (first pass)
        tried = torch.zeros(B, L + 1, dtype=torch.bool, device=self.device)

        for p in range(cfg.max_passes):
            act = (~done).nonzero().squeeze(-1)
            if act.numel() == 0:
                break
            sub = canvas.select(act) if act.numel() < B else canvas
            xa, ca, fa = x[act], committed[act], fixed[act]
            view = torch.where(ca, xa, torch.full_like(xa, mask_id))  # what the validator sees
            allowed = base_domain[act]
            dead = torch.zeros_like(ca)
            dom = task.domains(sub, view) if cfg.domains or self._reads_domains else None
            if cfg.domains and dom is not None:
                allowed = allowed & (dom | ca.unsqueeze(-1))
            if cfg.tabu:
                allowed = allowed & (tabu[act] == 0)
            if cfg.length_search and bool((length[act] >= 0).any()):
                allowed = allowed & _length_mask(length[act], L, V, end_id, allowed.device) | (
                    fa.unsqueeze(-1) & allowed)
            tf = time.perf_counter()
            logits = predict_logits(self.model, xa, sub, coords, domain_features(dom, ca))  # [b, L, V]
            if logits.device.type == "cuda":
                torch.cuda.synchronize()
            self.stats.forward_seconds += time.perf_counter() - tf
            self.stats.passes += 1
            empty = ~allowed.any(-1)
            if empty.any():  # no candidate left: a dead end; fall back to the static domain
                dead = empty & ~ca
                allowed = torch.where(empty.unsqueeze(-1), base_domain[act], allowed)
            pred, conf, commit, probs = cfg.sampler.step(
                logits, allowed, ~ca & ~dead, p, temperature=temp[act], generator=gen,
                confidence_domain=base_domain[act] if cfg.domains else None)
            passes[act] += 1
            if cfg.length_search and length_rank is None:
                length_rank = torch.zeros(B, L + 1, dtype=torch.long, device=self.device)
                length_rank[act] = _length_order(probs[..., end_id], fa, xa, end_id)
            xa = torch.where(commit, pred, xa)
            ca = ca | commit
            la = torch.where(commit, torch.full_like(level[act], p), level[act])
            last_pred[act] = pred

            renoise_conf = torch.zeros_like(ca)
            if cfg.confidence_renoise is not None:
                renoise_conf = low_confidence_positions(probs, xa, ca, fa, commit, cfg.confidence_renoise)

            view = torch.where(ca, xa, torch.full_like(xa, mask_id))
            rep = task.validate(sub, view)
            solved = rep.ok
            renoise_val = torch.zeros_like(ca)
            if cfg.validator_renoise:
                renoise_val = validator_positions(rep.violations, ca, fa, solved, dead, sub.item_peers())
            if cfg.validator_renoise and cfg.backjump:
                renoise_val, bars = backjump(renoise_val, la, ca, fa, xa, tabu[act] if cfg.tabu else None)
                if bars is not None:
                    tabu[act] = bars
            elif cfg.tabu:
                tabu[act] = update_tabu(tabu[act], xa, renoise_val, cfg.tabu)
            back = renoise_conf | renoise_val
            proposed = xa.clone() if cfg.trace else None  # what re-noised positions held, for traces
            ca = ca & ~back
            la = torch.where(back, torch.full_like(la, -1), la)

            # progress bookkeeping and restarts
            n_ok = ca.sum(-1)
            improved = n_ok > best[act]
            best[act] = torch.where(improved, n_ok, best[act])
            since_best[act] = torch.where(improved, torch.zeros_like(n_ok), since_best[act] + 1)
            all_committed = ca.all(-1)
            stalled = (all_committed & ~solved) | (since_best[act] >= cfg.patience)
            restart = torch.zeros_like(solved)
            ca_before, length_used = ca, length[act]  # indexing copies: the length this pass had
            if cfg.restarts:
                restart = stalled & ~solved
                if restart.any():
                    ca = torch.where(restart.unsqueeze(-1), fa, ca)
                    la = torch.where(restart.unsqueeze(-1), torch.full_like(la, -1), la)
                    rows = act[restart]
                    restarts[rows] += 1
                    temp[rows] = max(cfg.restart_temperature, cfg.sampler.temperature)
                    best[rows] = fa[restart].sum(-1)
                    since_best[rows] = 0
                    tabu[rows] = 0
                    if cfg.length_search and length_rank is not None:
                        length[rows] = _next_length(length_rank[rows], tried, rows, xa[restart],
                                                    ca_before[restart], end_id)
            finished = solved | (stalled & ~restart)

            # noise for everything not committed
            free = ~ca
            if noise.name == "uniform":
                # a free position keeps the model's guess, or is re-drawn at the corruption level the
                # canvas is at (the share of free positions still uncommitted), as in training
                t_now = (free & ~fa).sum(-1, keepdim=True) / (~fa).sum(-1, keepdim=True).clamp(min=1)
                redraw = torch.rand(free.shape, generator=gen, device=self.device) < cfg.uniform_redraw * t_now
                guess = torch.where(redraw, noise.noise_tokens(base_domain[act], gen), pred)
                xa = torch.where(free, guess, xa)
            else:
                xa = torch.where(free, torch.full_like(xa, mask_id), xa)
            x[act] = xa
            committed[act] = ca
            level[act] = la
            done[act] = finished

            if cfg.trace:
                self._record(traces, act, xa, ca, conf, commit, renoise_val, renoise_conf, restart, sub,
                             mask_id, proposed, length_used)

        results = self._results(canvas, problems, x, committed, last_pred, passes, restarts, traces,
                                time.perf_counter() - t0)
        self.stats.seconds += time.perf_counter() - t0
        return results

    # -------------------------------------------------------------------------------
    def _record(self, traces, act, xa, ca, conf, commit, rv, rc, restart, sub, mask_id, proposed,
                length) -> None:
        view = torch.where(ca, xa, torch.full_like(xa, mask_id))
        rep = self.task.validate(sub, view, messages=True)
        for j, b in enumerate(act.tolist()):
            traces[b].append(PassRecord(
                tokens=view[j].tolist(),
                committed=ca[j].tolist(),
                confidence=[round(float(c), 4) for c in conf[j]],
                newly_committed=commit[j].nonzero().squeeze(-1).tolist(),
                renoised_validator=rv[j].nonzero().squeeze(-1).tolist(),
                renoised_confidence=rc[j].nonzero().squeeze(-1).tolist(),
                restarted=bool(restart[j]),
                messages=rep.messages[j] if rep.messages else [],
                proposed=proposed[j].tolist(),
                length=int(length[j]) if int(length[j]) >= 0 else None,
            ))

    def _results(self, canvas, problems, x, committed, last_pred, passes, restarts, traces, seconds) -> list[Result]:
        B = x.shape[0]
        # unsolved items: fill what is not committed with the model's last guess, so the
        # answer shown is complete, and validate that
        final = torch.where(committed, x, last_pred)
        rep = self.task.validate(canvas, final, messages=True)
        solutions = self.task.decode(canvas, final)
        out = []
        for b in range(B):
            valid = bool(rep.ok[b])
            out.append(Result(
                problem=None if problems is None else problems[b],
                solution=solutions[b],
                valid=valid,
                passes=int(passes[b]),
                restarts=int(restarts[b]),
                violations=rep.violations[b].nonzero().squeeze(-1).tolist(),
                messages=rep.messages[b] if rep.messages else [],
                seconds=seconds / B,
                trace=traces[b] if traces else None,
                tokens=final[b].tolist(),
                checks=rep.checks[b] if rep.checks else [Check("validator", valid)],
            ))
        return out


def _length_mask(length: torch.Tensor, L: int, V: int, end_id: int, device) -> torch.Tensor:
    """[b, L, V] allowed under fixed lengths (``length`` [b], -1: free): the end token only from
    position ``length`` on, anything but it before."""
    pos = torch.arange(L, device=device)[None, :]
    free = (length < 0)[:, None]
    tail = pos >= length[:, None]
    is_end = torch.zeros(V, dtype=torch.bool, device=device)
    is_end[end_id] = True
    return free.unsqueeze(-1) | torch.where(tail.unsqueeze(-1), is_end, ~is_end)


def _length_order(p_end: torch.Tensor, fixed: torch.Tensor, tokens: torch.Tensor, end_id: int) -> torch.Tensor:
    """[b, L + 1] content lengths, likeliest first, from the first pass's P(position n is the end
    token) [b, L]: on a canvas whose content is followed by end tokens only, that marginal is
    P(length <= n), so P(length = n) = cdf(n) - cdf(n - 1) (the cdf made monotone; length L, no end
    token at all, takes the rest). Lengths that fixed positions rule out come last."""
    cdf = p_end.float().cummax(-1).values  # [b, L]
    cdf = torch.cat([cdf, torch.ones_like(cdf[:, :1])], dim=1)  # length <= L is certain
    pmf = cdf - torch.nn.functional.pad(cdf[:, :-1], (1, 0))  # [b, L + 1]
    b, L = fixed.shape
    pos = torch.arange(L, device=fixed.device)
    fixed_end = fixed & (tokens == end_id)
    fixed_other = fixed & (tokens != end_id)
    n = torch.arange(L + 1, device=fixed.device)[:, None]  # [L + 1, 1]
    # length n needs: no fixed end token before n, no fixed content token from n on
    bad = ((fixed_end[:, None, :] & (pos[None, None, :] < n[None])) |
           (fixed_other[:, None, :] & (pos[None, None, :] >= n[None]))).any(-1)  # [b, L + 1]
    score = torch.where(bad, torch.full_like(pmf, -1.0), pmf)
    return score.argsort(dim=-1, descending=True, stable=True)


def _next_length(order: torch.Tensor, tried: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor,
                 committed: torch.Tensor, end_id: int) -> torch.Tensor:
    """The next untried length of each restarting item ([r]); the attempt that just ended counts as
    tried at the length it had reached (its committed content before the first end token)."""
    L = tokens.shape[1]
    is_end = committed & (tokens == end_id)
    first_end = torch.where(is_end.any(-1), is_end.float().argmax(-1), torch.full_like(rows, L))
    tried[rows, first_end] = True
    untried = ~tried[rows].gather(1, order)  # [r, L + 1] in order
    pick = untried.float().argmax(-1)  # first untried in order (0 if every length was tried)
    out = order.gather(1, pick[:, None]).squeeze(1)
    tried[rows, out] = True
    return out


def _one_hot_mask(tokens: torch.Tensor, V: int) -> torch.Tensor:
    return torch.zeros(*tokens.shape, V, dtype=torch.bool, device=tokens.device).scatter_(
        -1, tokens.unsqueeze(-1), True)


__all__ = ["PassRecord", "Result", "RunStats", "Solver", "SolverConfig"]
