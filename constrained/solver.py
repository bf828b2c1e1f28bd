"""The Solver: a denoiser under a task's constraints, one batch at a time.

``run`` picks the search (``SolverConfig.search``): the complete, model-guided search of
``search.py`` where the task is a finite constraint problem (it finishes with a solution or a
proof that there is none), else the local search of ``local_search.py`` (validator re-noising with
tabu, backjumping and restarts; it proves nothing). Either returns one ``Result`` per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from constrained.engine.noise import NoiseProcess
from constrained.engine.samplers import Sampler

from .canvas import Canvas
from .errors import ConfigError
from .local_search import LocalSearch, trace_recorder
from .result import PassRecord, Result, RunStats
from .search import CompleteSearch
from .solver_names import ORDERS, SEARCHES
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
    length_search: bool = False  # restarts fix the content's length (needs sampler.end_token)
    search: str = "auto"  # "complete" | "local" | "auto": complete where the task allows it
    order: str = "model"  # complete search: "model" (ties and values by the denoiser) | "fixed" (model-free)
    decisions_per_pass: int = 1  # complete search: decisions pushed per pass (each its own level)
    decision_threshold: float = 0.99  # complete search: confidence an extra decision needs
    check_unique: bool = False  # complete search: go on past the first solution (Result.unique)
    model_every: int = 1  # complete search: an item calls the model every k-th pass (ranks by its last logits)
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
        if self.model_every < 1:
            raise ConfigError(f"model_every must be >= 1, got {self.model_every}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ConfigError(f"time_limit must be > 0 seconds, got {self.time_limit}")
        if self.length_search and self.sampler.end_token is None:
            raise ConfigError("length_search needs the sampler's end_token (the token that ends the "
                              "content, e.g. [PAD]); set end_token or turn length_search off")

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

    def complete(self, canvas: Canvas) -> bool:
        """Whether ``run`` searches ``canvas`` completely: ``search="complete"``, or ``"auto"`` on a task
        that allows it (``Task.complete_search``, ``Task.prefers_complete_search``) with domains and
        validator on."""
        cfg = self.config
        if cfg.search == "complete":
            return True
        return (cfg.search == "auto" and self.task.complete_search and cfg.domains and cfg.validator_renoise
                and self.task.prefers_complete_search(canvas))

    def run(self, canvas: Canvas, problems: Sequence[Any] | None = None) -> list[Result]:
        """Solve the batch ``canvas`` (problems: the native inputs, echoed into each Result)."""
        cfg, canvas = self.config, canvas.to(self.device)
        if not self.complete(canvas):
            traces: list[list[PassRecord]] = [[] for _ in range(canvas.batch_size)]
            record = trace_recorder(self.task, traces, canvas.vocab.mask_id) if cfg.trace else None
            results = LocalSearch(self.task, self.model, self.noise, cfg, self.stats, on_pass=record).run(
                canvas, problems)
            for r, t in zip(results, traces):
                r.trace = t if cfg.trace else None
            return results
        if not self.task.complete_search:
            raise ConfigError(f"task {self.task.name!r} is not a finite constraint problem with sound "
                              "domains: search='complete' cannot prove anything for it; use 'local'")
        search = CompleteSearch(self.task, self.model, self.noise, max_passes=cfg.max_passes, order=cfg.order,
                                decisions_per_pass=cfg.decisions_per_pass,
                                decision_threshold=cfg.decision_threshold, check_unique=cfg.check_unique,
                                time_limit=cfg.time_limit, seed=cfg.seed, stats=self.stats, trace=cfg.trace,
                                model_every=cfg.model_every)
        return search.run(canvas, problems)


__all__ = ["PassRecord", "Result", "RunStats", "Solver", "SolverConfig"]
