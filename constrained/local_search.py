"""The local search: prior -> (denoise -> commit -> validate -> re-noise)* -> Result.

For tasks that are not finite constraint problems (peptides, code) and as a local search for
large graphs; it never proves anything, so an item it does not solve is ``"unsolved"``. Each
mechanism is a policy of its own (``renoise.py``, ``length_search.py``), switchable in
``SolverConfig`` so its effect can be measured:

- ``domains``: candidates left by the givens and committed tokens mask the logits;
- ``validator_renoise``: positions the validator implicates go back to noise;
- ``backjump``: validator re-noising undoes the latest pass holding an implicated token and
  everything committed after it (each pass a decision level), barring the failed values at that
  level until an earlier level changes; off, it re-noises only the implicated positions;
- ``tabu``: a value that failed at a position is barred there (for ``tabu`` passes when not
  backjumping);
- ``restarts``: an item that stops making progress starts again from the prior, sampling with
  temperature so it takes another path;
- ``confidence_renoise`` (off by default): low-confidence re-noising (self-correction);
- ``length_search`` (off by default): restarts hold a variable-length canvas to the next likeliest
  content length the model gave.

The noise process refills whatever is not committed after each pass, as in training.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from constrained.engine.denoiser import domain_features, predict_logits, reads_domains
from constrained.engine.noise import NoiseProcess

from .canvas import Canvas
from .length_search import length_mask, length_order, next_length
from .renoise import backjump, low_confidence_positions, update_tabu, validator_positions
from .result import PassRecord, Result, RunStats
from .task import Task


@dataclass
class LocalState:
    """The loop's state, one row per item: tokens/committed/level [B, L] (level: the pass that
    committed each token, -1 none), tabu [B, L, V] int16 (> 0: value barred), temperature, passes,
    restarts, best (most tokens committed so far), since_best, length (-1: the model's choice) [B],
    guess [B, L] (the model's latest prediction), length_rank [B, L + 1] and tried [B, L + 1]."""

    tokens: torch.Tensor
    committed: torch.Tensor
    level: torch.Tensor
    tabu: torch.Tensor
    temperature: torch.Tensor
    done: torch.Tensor
    passes: torch.Tensor
    restarts: torch.Tensor
    best: torch.Tensor
    since_best: torch.Tensor
    guess: torch.Tensor
    length: torch.Tensor
    tried: torch.Tensor
    length_rank: torch.Tensor | None = None


@dataclass
class PassEvent:
    """What one pass did to the items ``rows`` (a sub-batch ``canvas``): for trace callbacks."""

    rows: torch.Tensor
    canvas: Canvas
    tokens: torch.Tensor  # [b, L] after the pass (uncommitted positions hold noise)
    committed: torch.Tensor
    confidence: torch.Tensor
    newly_committed: torch.Tensor
    renoised_validator: torch.Tensor
    renoised_confidence: torch.Tensor
    restarted: torch.Tensor  # [b]
    proposed: torch.Tensor  # [b, L] after commit, before re-noising
    length: torch.Tensor  # [b] the length this pass was held to, -1 free


class LocalSearch:
    """Runs the local search of ``config`` (a SolverConfig) for one batch; ``on_pass`` receives a
    :class:`PassEvent` after every pass (the Solver records traces with it)."""

    def __init__(self, task: Task, model: nn.Module, noise: NoiseProcess, config: Any, stats: RunStats,
                 on_pass: Callable[[PassEvent], None] | None = None) -> None:
        self.task, self.model, self.noise, self.config, self.stats = task, model, noise, config, stats
        self.on_pass = on_pass
        self._reads_domains = reads_domains(model)

    @torch.no_grad()
    def run(self, canvas: Canvas, problems: Sequence[Any] | None = None) -> list[Result]:
        cfg = self.config
        t0 = time.perf_counter()
        dev = canvas.tokens.device
        B, L = canvas.tokens.shape
        V = len(canvas.vocab)
        gen = torch.Generator(device=dev).manual_seed(cfg.seed)
        fixed = canvas.fixed.unsqueeze(-1)
        given = torch.zeros(B, L, V, dtype=torch.bool, device=dev).scatter_(-1, canvas.tokens.unsqueeze(-1), True)
        self.static = canvas.allowed_values() & ~fixed | given & fixed  # [B, L, V]: givens hold their own token
        self.coords = {k: v.to(dev) for k, v in canvas.layout.coords.items()}
        tokens = self.noise.prior(canvas.tokens, canvas.fixed, self.static, gen)
        zeros = torch.zeros(B, dtype=torch.long, device=dev)
        s = LocalState(
            tokens=tokens, committed=canvas.fixed.clone(), level=torch.full((B, L), -1, dtype=torch.long, device=dev),
            tabu=torch.zeros(B, L, V, dtype=torch.int16, device=dev),
            temperature=torch.full((B,), float(cfg.sampler.temperature), device=dev),
            done=torch.zeros(B, dtype=torch.bool, device=dev), passes=zeros.clone(), restarts=zeros.clone(),
            best=canvas.fixed.sum(-1), since_best=zeros.clone(), guess=tokens.clone(),
            length=torch.full((B,), -1, dtype=torch.long, device=dev),
            tried=torch.zeros(B, L + 1, dtype=torch.bool, device=dev))
        for p in range(cfg.max_passes):
            if cfg.time_limit is not None and time.perf_counter() - t0 > cfg.time_limit:
                break
            rows = (~s.done).nonzero().squeeze(-1)
            if rows.numel() == 0:
                break
            self._pass(canvas, s, rows, p, gen)
        results = self._results(canvas, problems, s, time.perf_counter() - t0)
        self.stats.seconds += time.perf_counter() - t0
        return results

    # -------------------------------------------------------------------------------------------
    def _allowed(self, sub: Canvas, s: LocalState, rows: torch.Tensor, view: torch.Tensor,
                 committed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[b, L, V] the candidates of this pass (allowed values, propagation, tabu, held length) and the
        task's domains (None when neither the mask nor the model wants them)."""
        cfg = self.config
        allowed = self.static[rows]
        domains = self.task.domains(sub, view) if cfg.domains or self._reads_domains else None
        if cfg.domains and domains is not None:
            allowed = allowed & (domains | committed.unsqueeze(-1))
        if cfg.tabu:
            allowed = allowed & (s.tabu[rows] == 0)
        if cfg.length_search and bool((s.length[rows] >= 0).any()):
            L, V = allowed.shape[1:]
            held = length_mask(s.length[rows], L, V, cfg.sampler.end_token, allowed.device)
            allowed = allowed & held | (sub.fixed.unsqueeze(-1) & allowed)
        return allowed, domains

    def _forward(self, tokens: torch.Tensor, sub: Canvas, domains: torch.Tensor | None,
                 committed: torch.Tensor) -> torch.Tensor:
        tf = time.perf_counter()
        logits = predict_logits(self.model, tokens, sub, self.coords, domain_features(domains, committed))
        if logits.device.type == "cuda":
            torch.cuda.synchronize()
        self.stats.forward_seconds += time.perf_counter() - tf
        self.stats.passes += 1
        return logits  # [b, L, V]

    def _pass(self, canvas: Canvas, s: LocalState, rows: torch.Tensor, p: int, gen: torch.Generator) -> None:
        """One pass over the items ``rows``: denoise, commit, validate, re-noise, restart, refill."""
        cfg, task, mask_id = self.config, self.task, canvas.vocab.mask_id
        sub = canvas.select(rows) if rows.numel() < canvas.batch_size else canvas
        fixed, tokens, committed = sub.fixed, s.tokens[rows], s.committed[rows]
        view = torch.where(committed, tokens, torch.full_like(tokens, mask_id))  # what the validator sees
        allowed, domains = self._allowed(sub, s, rows, view, committed)
        logits = self._forward(tokens, sub, domains, committed)
        dead = torch.zeros_like(committed)
        empty = ~allowed.any(-1)
        if empty.any():  # no candidate left: a dead end; fall back to the allowed values
            dead = empty & ~committed
            allowed = torch.where(empty.unsqueeze(-1), self.static[rows], allowed)
        pred, conf, commit, probs = cfg.sampler.step(
            logits, allowed, ~committed & ~dead, p, temperature=s.temperature[rows], generator=gen,
            confidence_allowed=self.static[rows] if cfg.domains else None)
        s.passes[rows] += 1
        if cfg.length_search and s.length_rank is None:
            s.length_rank = torch.zeros_like(s.tried, dtype=torch.long)
            s.length_rank[rows] = length_order(probs[..., cfg.sampler.end_token], fixed, tokens,
                                               cfg.sampler.end_token)
        tokens = torch.where(commit, pred, tokens)
        committed = committed | commit
        level = torch.where(commit, torch.full_like(s.level[rows], p), s.level[rows])
        s.guess[rows] = pred

        renoise_conf = torch.zeros_like(committed)
        if cfg.confidence_renoise is not None:
            renoise_conf = low_confidence_positions(probs, tokens, committed, fixed, commit, cfg.confidence_renoise)
        rep = task.validate(sub, torch.where(committed, tokens, torch.full_like(tokens, mask_id)))
        solved = rep.ok
        renoise_val = torch.zeros_like(committed)
        if cfg.validator_renoise:
            renoise_val = validator_positions(rep.violations, committed, fixed, solved, dead, sub.item_peers())
        if cfg.validator_renoise and cfg.backjump:
            renoise_val, bars = backjump(renoise_val, level, committed, fixed, tokens,
                                         s.tabu[rows] if cfg.tabu else None)
            if bars is not None:
                s.tabu[rows] = bars
        elif cfg.tabu:
            s.tabu[rows] = update_tabu(s.tabu[rows], tokens, renoise_val, cfg.tabu)
        back = renoise_conf | renoise_val
        proposed = tokens
        committed = committed & ~back
        level = torch.where(back, torch.full_like(level, -1), level)

        restart, stalled, length_used = self._progress(s, rows, tokens, committed, fixed, solved)
        if restart.any():
            committed = torch.where(restart.unsqueeze(-1), fixed, committed)
            level = torch.where(restart.unsqueeze(-1), torch.full_like(level, -1), level)
        # whatever is not committed goes back to noise: the noise process refills it as in training
        # (uniform noise re-draws a share at the corruption level the canvas is at, its free share)
        free = ~committed
        t_now = (free & ~fixed).sum(-1, keepdim=True) / (~fixed).sum(-1, keepdim=True).clamp(min=1)
        tokens = self.noise.refill(tokens, free, self.static[rows], pred, cfg.uniform_redraw * t_now, gen)
        s.tokens[rows], s.committed[rows], s.level[rows] = tokens, committed, level
        s.done[rows] = solved | (stalled & ~restart)
        if self.on_pass is not None:
            self.on_pass(PassEvent(rows=rows, canvas=sub, tokens=tokens, committed=committed, confidence=conf,
                                   newly_committed=commit, renoised_validator=renoise_val,
                                   renoised_confidence=renoise_conf, restarted=restart, proposed=proposed,
                                   length=length_used))

    def _progress(self, s: LocalState, rows: torch.Tensor, tokens: torch.Tensor, committed: torch.Tensor,
                  fixed: torch.Tensor, solved: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Track the most committed so far; items that stall restart (when on). Returns (restart [b],
        stalled [b], the length each item was held to this pass [b])."""
        cfg = self.config
        n_ok = committed.sum(-1)
        improved = n_ok > s.best[rows]
        s.best[rows] = torch.where(improved, n_ok, s.best[rows])
        s.since_best[rows] = torch.where(improved, torch.zeros_like(n_ok), s.since_best[rows] + 1)
        stalled = (committed.all(-1) & ~solved) | (s.since_best[rows] >= cfg.patience)
        length_used = s.length[rows]  # indexing copies: the length this pass had
        restart = stalled & ~solved if cfg.restarts else torch.zeros_like(solved)
        if restart.any():
            again = rows[restart]
            s.restarts[again] += 1
            s.temperature[again] = max(cfg.restart_temperature, cfg.sampler.temperature)
            s.best[again] = fixed[restart].sum(-1)
            s.since_best[again] = 0
            s.tabu[again] = 0
            if cfg.length_search and s.length_rank is not None:
                s.length[again] = next_length(s.length_rank[again], s.tried, again, tokens[restart],
                                              committed[restart], cfg.sampler.end_token)
        return restart, stalled, length_used

    def _results(self, canvas: Canvas, problems: Sequence[Any] | None, s: LocalState,
                 seconds: float) -> list[Result]:
        """Unsolved items are filled with the model's last guess where nothing is committed, so the
        answer shown is complete, and that is what is validated."""
        final = torch.where(s.committed, s.tokens, s.guess)
        rep = self.task.validate(canvas, final, messages=True)
        solutions = self.task.decode(canvas, final)
        B = final.shape[0]
        return [Result(
            problem=None if problems is None else problems[b], solution=solutions[b], valid=bool(rep.ok[b]),
            passes=int(s.passes[b]), restarts=int(s.restarts[b]),
            violations=rep.violations[b].nonzero().squeeze(-1).tolist(),
            messages=rep.messages[b] if rep.messages else [], seconds=seconds / B, tokens=final[b].tolist(),
            checks=rep.item_checks(b),
        ) for b in range(B)]


def trace_recorder(task: Task, traces: list[list[PassRecord]], mask_id: int) -> Callable[[PassEvent], None]:
    """An ``on_pass`` callback appending one :class:`PassRecord` per item and pass to ``traces``."""

    def record(e: PassEvent) -> None:
        view = torch.where(e.committed, e.tokens, torch.full_like(e.tokens, mask_id))
        rep = task.validate(e.canvas, view, messages=True)
        for j, b in enumerate(e.rows.tolist()):
            traces[b].append(PassRecord(
                tokens=view[j].tolist(), committed=e.committed[j].tolist(),
                confidence=[round(float(c), 4) for c in e.confidence[j]],
                newly_committed=e.newly_committed[j].nonzero().squeeze(-1).tolist(),
                renoised_validator=e.renoised_validator[j].nonzero().squeeze(-1).tolist(),
                renoised_confidence=e.renoised_confidence[j].nonzero().squeeze(-1).tolist(),
                restarted=bool(e.restarted[j]), messages=rep.messages[j] if rep.messages else [],
                proposed=e.proposed[j].tolist(),
                length=int(e.length[j]) if int(e.length[j]) >= 0 else None))

    return record


__all__ = ["LocalSearch", "LocalState", "PassEvent", "trace_recorder"]
