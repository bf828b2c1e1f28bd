"""Training data: an endless stream of a task's examples, and the collator that noises them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from constrained.engine.denoiser import domain_features
from constrained.engine.noise import NoiseProcess
from torch.utils.data import IterableDataset, get_worker_info

from constrained.canvas import Canvas
from constrained.task import Task


class TaskStream(IterableDataset):
    """Endless examples from ``task.training_example``; each worker and rank draws its own."""

    def __init__(self, task: Task, seed: int = 0, rank: int = 0) -> None:
        self.task, self.seed, self.rank = task, seed, rank

    def __iter__(self):
        info = get_worker_info()
        worker = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, self.rank, worker])
        while True:
            yield self.task.training_example(rng)


@dataclass
class DiffusionCollator:
    """Stacks clean examples and corrupts them with the noise process at t ~ U(eps, 1).

    Fixed positions (givens, prompt, padding) are never noised and never scored.
    An example may carry ``allowed`` [L, V] (domain for uniform noise), ``coords`` (name ->
    [L]) where layouts differ per item, and ``context`` [C] (padded here),
    and ``peers`` [L, L] (a graph's adjacency, stacked into ``peers``).
    Output: input_ids (x_t), labels (x_0), fixed, corrupted, t, coords, and context.
    """

    task: Task
    noise: NoiseProcess
    seed: int = 0
    domains: bool = False  # also give the model the task's candidate domains of x_t (mask noise only)
    #: share of examples whose context is masked too, at the example's level t, and scored
    #: (``context_labels`` / ``context_corrupted``): MDLM on the whole window
    context_noise: float = 0.0

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)
        if self.domains and self.noise.name != "mask":
            raise ValueError("domain input needs mask noise: under uniform noise x_t has no empty positions")
        if not 0.0 <= self.context_noise <= 1.0:
            raise ValueError(f"context_noise must be in [0, 1], got {self.context_noise!r}")
        if self.context_noise and self.noise.name != "mask":
            raise ValueError("context noise needs mask noise")

    def __call__(self, examples: list[dict[str, torch.Tensor]]) -> dict[str, object]:
        x0 = torch.stack([e["tokens"] for e in examples])  # [B, L]
        fixed = torch.stack([e["fixed"] for e in examples]).bool()
        B, L = x0.shape
        if "allowed" in examples[0]:
            domain = torch.stack([e["allowed"] for e in examples])
        else:
            domain = self.task.vocab.content_mask().expand(B, L, -1)
        t = self.noise.sample_t(B, self.generator)
        xt, corrupted = self.noise.corrupt(x0, t, fixed, domain, self.generator)
        batch: dict[str, object] = {
            "input_ids": xt,
            "labels": x0,
            "fixed": fixed,
            "corrupted": corrupted,
            "t": t,
            "coords": self._coords(examples, B),
        }
        if "peers" in examples[0]:  # per-item adjacency [L, L] (graph tasks)
            batch["peers"] = torch.stack([e["peers"] for e in examples]).bool()
        if self.domains:
            batch["domains"] = self._domains(batch, examples, domain)
        if "context" in examples[0]:
            C = max(e["context"].shape[0] for e in examples)
            ctx = torch.zeros(B, C, dtype=torch.long)
            cm = torch.zeros(B, C, dtype=torch.bool)
            for i, e in enumerate(examples):
                n = e["context"].shape[0]
                ctx[i, :n] = e["context"]
                cm[i, :n] = True
            batch["context"], batch["context_mask"] = ctx, cm
            if self.context_noise:
                self._noise_context(batch, t)
        return batch

    def _noise_context(self, batch: dict[str, object], t: torch.Tensor) -> None:
        """Mask the context of a ``context_noise`` share of the examples at their level t; the
        masked tokens are scored like canvas tokens. Padding (id 0) is never masked."""
        ctx, cm = batch["context"], batch["context_mask"]
        B, C = ctx.shape
        chosen = torch.rand(B, generator=self.generator) < self.context_noise
        u = torch.rand(B, C, generator=self.generator)
        scored = chosen[:, None] & cm & (ctx != 0)
        corrupted = scored & (u < t[:, None])
        batch["context_labels"] = ctx
        batch["context"] = torch.where(corrupted, torch.full_like(ctx, self.noise.mask_id), ctx)
        batch["context_corrupted"] = corrupted
        batch["context_scored"] = scored

    def _domains(self, batch: dict[str, object], examples: list[dict[str, torch.Tensor]],
                 static: torch.Tensor) -> torch.Tensor:
        """Candidates left at the empty positions of x_t, as the Solver computes them at inference."""
        xt = batch["input_ids"]
        canvas = Canvas(tokens=xt, fixed=batch["fixed"], layout=self.task.layout, vocab=self.task.vocab,
                        allowed=static if "allowed" in examples[0] else None,
                        peers=batch.get("peers"),
                        meta=[e.get("meta") for e in examples])
        dom = self.task.domains(canvas, xt)
        filled = xt != self.noise.mask_id
        return domain_features(static & dom if dom is not None else static, filled)

    def _coords(self, examples: list[dict[str, torch.Tensor]], B: int) -> dict[str, torch.Tensor]:
        """Per-example coordinates (``coords`` in the example) or the task's layout's."""
        if "coords" in examples[0]:
            return {k: torch.stack([e["coords"][k] for e in examples]) for k in examples[0]["coords"]}
        return self.task.layout.batch_coords(B)
