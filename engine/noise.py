"""Noise processes and their training losses.

``MaskNoise`` is absorbing-state diffusion: a corrupted position becomes ``[MASK]``.
``UniformNoise`` is uniform-state diffusion (DiffusionGemma's): a corrupted position
becomes a random token from the position's allowed values, so the canvas always holds
content and the model learns to correct tokens, not only to fill blanks.

Both use the linear schedule: at level t in (0, 1] each non-fixed position is
corrupted independently with probability t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .names import NOISES


def _random_allowed(allowed: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """allowed [B, L, V] bool -> [B, L] a uniformly drawn allowed token (0 where none is allowed)."""
    w = allowed.float()
    empty = w.sum(-1) == 0
    w[empty] = 1.0
    flat = w.reshape(-1, w.shape[-1])
    draw = torch.multinomial(flat, 1, generator=generator).view(allowed.shape[:-1])
    return draw.masked_fill(empty, 0)


@dataclass(frozen=True)
class NoiseProcess:
    mask_id: int
    eps: float = 1e-3
    name: str = ""

    def sample_t(self, batch: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """[B] corruption levels t ~ U(eps, 1)."""
        u = torch.rand(batch, generator=generator, device=device)
        return self.eps + (1 - self.eps) * u

    def noise_tokens(self, allowed: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def prior(self, tokens: torch.Tensor, fixed: torch.Tensor, allowed: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """The fully noised canvas: fixed positions kept, the rest noise."""
        return self.renoise(tokens, ~fixed, allowed, generator)

    def renoise(self, tokens: torch.Tensor, where: torch.Tensor, allowed: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Send positions ``where`` [B, L] back to noise."""
        return torch.where(where, self.noise_tokens(allowed, generator), tokens)

    def refill(self, tokens: torch.Tensor, free: torch.Tensor, allowed: torch.Tensor, guess: torch.Tensor,
               redraw: torch.Tensor | float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """The canvas a denoiser reads while positions ``free`` [B, L] are undecided: tokens [B, L]
        elsewhere. ``guess`` [B, L] is the model's latest prediction, ``redraw`` the share of free
        positions drawn afresh (a float, or [B, 1]). Each process fills them the way it was trained."""
        raise NotImplementedError

    def corrupt(self, x0: torch.Tensor, t: torch.Tensor, fixed: torch.Tensor, allowed: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x0 [B, L] at level t [B] -> (x_t [B, L], corrupted [B, L] bool). Fixed positions stay."""
        u = torch.rand(x0.shape, generator=generator, device=x0.device)
        corrupted = (u < t[:, None]) & ~fixed
        return self.renoise(x0, corrupted, allowed, generator), corrupted

    def loss(self, logits: torch.Tensor, x0: torch.Tensor, corrupted: torch.Tensor, t: torch.Tensor,
             fixed: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class MaskNoise(NoiseProcess):
    name: str = "mask"

    def noise_tokens(self, allowed: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.full(allowed.shape[:-1], self.mask_id, dtype=torch.long, device=allowed.device)

    def refill(self, tokens, free, allowed, guess, redraw=0.0, generator=None):
        """Absorbing state: an undecided position is ``[MASK]``."""
        return torch.where(free, torch.full_like(tokens, self.mask_id), tokens)

    def loss(self, logits, x0, corrupted, t, fixed):
        """MDLM's continuous-time bound for the linear schedule: (1/t) * CE on masked positions,
        averaged over the non-fixed positions of the batch."""
        ce = F.cross_entropy(logits.transpose(1, 2).float(), x0, reduction="none")  # [B, L]
        weighted = ce * corrupted.float() / t[:, None]
        return weighted.sum() / (~fixed).sum().clamp(min=1)


@dataclass(frozen=True)
class UniformNoise(NoiseProcess):
    name: str = "uniform"

    def noise_tokens(self, allowed: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return _random_allowed(allowed, generator)

    def refill(self, tokens, free, allowed, guess, redraw=0.0, generator=None):
        """Uniform state: an undecided position keeps the model's guess, or is re-drawn from its allowed
        values (a share ``redraw`` of them, and every guess outside the allowed values, e.g. ``[MASK]``), as
        at the corruption level the canvas is at in training."""
        in_domain = allowed.gather(-1, guess.clamp(0, allowed.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
        draw = ~in_domain
        if isinstance(redraw, torch.Tensor) or redraw > 0:
            draw = draw | (torch.rand(free.shape, generator=generator, device=free.device) < redraw)
        fill = torch.where(draw, self.noise_tokens(allowed, generator), guess)
        return torch.where(free, fill, tokens)

    def loss(self, logits, x0, corrupted, t, fixed):
        """Cross-entropy on every non-fixed position: the model must both fill and correct."""
        ce = F.cross_entropy(logits.transpose(1, 2).float(), x0, reduction="none")
        free = (~fixed).float()
        return (ce * free).sum() / free.sum().clamp(min=1)


def make_noise(name: str, mask_id: int) -> NoiseProcess:
    """The noise process called ``name`` (one of ``NOISES``); ValueError for any other name."""
    if name == "mask":
        return MaskNoise(mask_id)
    if name == "uniform":
        return UniformNoise(mask_id)
    raise ValueError(f"unknown noise process {name!r}: use one of {', '.join(NOISES)}")
