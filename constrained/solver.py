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
from typing import Any

import torch
from torch import nn

from constrained.engine.denoiser import domain_features, predict_logits, reads_domains
from constrained.engine.noise import NoiseProcess
from constrained.engine.samplers import Sampler

from .canvas import Canvas
from .errors import ConfigError
from .renoise import backjump, low_confidence_positions, update_tabu, validator_positions
from .result import PassRecord, Result, RunStats
from .search import CompleteSearch
from .task import Task

SEARCHES = ("auto", "complete", "local")
ORDERS = ("model", "fixed")


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
    search: str = "auto"  # "complete" | "local" | "auto": complete where the task allows it
    order: str = "model"  # complete search: "model" (ties and values by the denoiser) | "fixed" (model-free)
    decisions_per_pass: int = 1  # complete search: decisions pushed per pass (each its own level)
    decision_threshold: float = 0.99  # complete search: confidence an extra decision needs
    check_unique: bool = False  # complete search: go on past the first solution (Result.unique)
    time_limit: float | None = None  # seconds for one run() of a batch; None: passes alone bound it
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
        if self.search not in SEARCHES:
            raise ConfigError(f"search must be one of {SEARCHES}, got {self.search!r}")
        if self.order not in ORDERS:
            raise ConfigError(f"order must be one of {ORDERS}, got {self.order!r}")
        if self.decisions_per_pass < 1:
            raise ConfigError(f"decisions_per_pass must be >= 1, got {self.decisions_per_pass}")
        if not 0 < self.decision_threshold <= 1:
            raise ConfigError(f"decision_threshold must be in (0, 1], got {self.decision_threshold}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ConfigError(f"time_limit must be > 0 seconds, got {self.time_limit}")
        if self.length_search and self.sampler.defer_token is None:
            raise ConfigError("length_search needs the sampler's defer_token (the token that ends the "
                              "content, e.g. [PAD]); set defer_token or turn length_search off")

    @classmethod
    def model_only(cls, **kw: Any) -> SolverConfig:
        """The bare model: no domains, no validator re-noising, no tabu, no restarts."""
        return cls(domains=False, validator_renoise=False, backjump=False, tabu=0, restarts=False, **kw)


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
    @property
    def complete(self) -> bool:
        """Whether ``run`` searches completely: ``search="complete"``, or ``"auto"`` on a task that
        allows it (``Task.complete_search``) with domains on."""
        cfg = self.config
        if cfg.search == "complete":
            return True
        return cfg.search == "auto" and self.task.complete_search and cfg.domains and cfg.validator_renoise

    def run(self, canvas: Canvas, problems: Sequence[Any] | None = None) -> list[Result]:
        """Solve the batch ``canvas`` (problems: the native inputs, echoed into each Result)."""
        canvas = canvas.to(self.device)
        if not self.complete:
            return self._local(canvas, problems)
        cfg = self.config
        if not self.task.complete_search:
            raise ConfigError(f"task {self.task.name!r} is not a finite constraint problem with sound "
                              "domains: search='complete' cannot prove anything for it; use 'local'")
        search = CompleteSearch(self.task, self.model, self.noise, max_passes=cfg.max_passes, order=cfg.order,
                                decisions_per_pass=cfg.decisions_per_pass,
                                decision_threshold=cfg.decision_threshold, check_unique=cfg.check_unique,
                                time_limit=cfg.time_limit, seed=cfg.seed, stats=self.stats,
                                trace=cfg.trace)
        return search.run(canvas, problems)

    @torch.no_grad()
    def _local(self, canvas: Canvas, problems: Sequence[Any] | None = None) -> list[Result]:
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
            if cfg.time_limit is not None and time.perf_counter() - t0 > cfg.time_limit:
                break
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

            # noise for everything not committed: the noise process refills it as in training (uniform
            # noise re-draws a share at the corruption level the canvas is at: its free share)
            free = ~ca
            t_now = (free & ~fa).sum(-1, keepdim=True) / (~fa).sum(-1, keepdim=True).clamp(min=1)
            xa = noise.refill(xa, free, base_domain[act], pred, cfg.uniform_redraw * t_now, gen)
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
