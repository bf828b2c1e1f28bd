"""DiffusionGemma's denoising loop for one canvas, as transformers runs it in
``DiffusionGemmaGenerationMixin.generate`` (``_denoising_step``), on any block model:

1. the canvas starts as random tokens (uniform over the allowed tokens);
2. each step scales the logits by the linear temperature schedule, samples a token at every
   position, and accepts the entropy-bound set of them (``Sampler.accept``); every position
   not accepted is re-drawn at random; accepted ones hold the sampled token (a later step may
   re-decide them too: nothing is frozen);
3. the scaled logits feed the next step as self-conditioning (models with ``condition_on``);
4. a row stops once its argmax canvas has not changed for ``stability`` steps and the mean
   entropy of its scaled logits is below ``stop_entropy`` (its canvas is then frozen);
5. the block's tokens are the last argmax canvas.

Random draws happen in transformers' order (initial canvas, then per step one multinomial
sample and one re-noising draw, over the whole batch), so with the same seed and the whole
vocabulary allowed the tokens are the reference's. The constraint layer adds an allowed-token
bias (``off_allowed``) and an optional validator: the values it implicates are barred at their
positions for the rest of the canvas (as the project's own loop does), the positions are
re-drawn, and a row with implicated positions does not stop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .samplers import NEG, Sampler


def denoise_entropy_bound(logits_fn: Callable[[torch.Tensor], torch.Tensor], batch: int, length: int,
                          draw_ids: torch.Tensor, off_allowed: torch.Tensor, sampler: Sampler,
                          generator: torch.Generator,
                          condition: Callable[[torch.Tensor], None] | None = None,
                          validator: Callable[[torch.Tensor], torch.Tensor] | None = None,
                          done: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Denoise one canvas -> (tokens [B, K], passes run).

    logits_fn: canvas [B, K] -> logits [B, K, V] (the model's canvas pass); draw_ids [C]: the token
    ids random draws come from (the whole vocabulary to match transformers); off_allowed [V]: 0 for
    allowed tokens, a large negative number otherwise; condition: receives each step's scaled
    logits (the next pass's self-conditioning); validator: tokens [B, K] -> implicated [B, K] bool;
    done [B] bool: rows already finished (they still go through the batch's passes, frozen)."""
    B, K = batch, length
    device = draw_ids.device

    whole = draw_ids.numel() == off_allowed.numel() and bool((off_allowed == 0).all())

    def draw() -> torch.Tensor:  # whole vocabulary: transformers' own call, so the same numbers
        if whole:
            return torch.randint(0, draw_ids.numel(), (B, K), generator=generator, device=device)
        return draw_ids[torch.randint(draw_ids.numel(), (B, K), generator=generator, device=device)]

    x = draw()
    argmax = x
    finished = torch.zeros(B, dtype=torch.bool, device=device) if done is None else done.clone()
    history: torch.Tensor | None = None
    ban: tuple[torch.Tensor, ...] | None = None  # (row, position, value) barred by the validator
    last_scaled: torch.Tensor | None = None
    everywhere = torch.ones(B, K, dtype=torch.bool, device=device)
    passes = 0
    for p in range(sampler.steps):
        logits = logits_fn(x).float() + off_allowed
        if ban is not None:
            logits.index_put_(ban, logits.new_tensor(NEG))
        passes += 1
        sample, scaled, entropy, _, accept = sampler._entropy_bound_step(logits, None, everywhere, p, generator)
        new_argmax = scaled.argmax(-1)
        bad = None
        if validator is not None:
            bad = validator(new_argmax) & ~finished[:, None]
            if bool(bad.any()):
                ban = add_bans(ban, bad, new_argmax, draw_ids.numel())
            accept = accept & ~bad
        new_x = torch.where(accept, sample, draw())
        if bool(finished.any()):
            new_argmax = torch.where(finished[:, None], argmax, new_argmax)
            new_x = torch.where(finished[:, None], x, new_x)
            if last_scaled is not None:  # a finished row keeps its logits (its self-conditioning)
                scaled = torch.where(finished[:, None, None], last_scaled, scaled)
        # stable: the argmax equals each of the last ``stability`` ones; confident: low mean entropy
        if sampler.stability == 0:
            stable = torch.ones(B, dtype=torch.bool, device=device)
        else:
            if history is None:
                history = torch.full((sampler.stability, B, K), -1, dtype=torch.long, device=device)
            stable = (history == new_argmax[None]).all(-1).all(0)
            history = torch.cat([history[1:], new_argmax[None]], 0)
        confident = entropy.mean(-1) < sampler.stop_entropy
        stop = stable & confident
        if bad is not None:
            stop = stop & ~bad.any(-1)
        finished = finished | stop
        if condition is not None:
            condition(scaled)
        last_scaled = scaled
        x, argmax = new_x, new_argmax
        if bool(finished.all()):
            break
    return argmax, passes


def add_bans(ban: tuple[torch.Tensor, ...] | None, bad: torch.Tensor, x: torch.Tensor,
             n_content: int) -> tuple[torch.Tensor, ...]:
    """Bar the values ``x`` holds where ``bad`` [B, K] is set: (item, position, value) index triples,
    kept sparse (a few per pass, not a [B, K, V] mask). A position whose every content value has been
    barred gets all of them back."""
    b, k = bad.nonzero(as_tuple=True)
    new = (b, k, x[b, k])
    ban = new if ban is None else tuple(torch.cat([old, n]) for old, n in zip(ban, new, strict=True))
    where = ban[0] * x.shape[1] + ban[1]
    counts = torch.bincount(where, minlength=x.numel())
    full = counts[where] >= n_content
    return tuple(t[~full] for t in ban) if bool(full.any()) else ban
