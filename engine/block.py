"""Block-autoregressive diffusion: outputs longer than one canvas, block by block.

DiffusionGemma's decoding loop, driven by the project's noise processes and samplers:

1. the prompt is prefilled once, causally, into a ``transformers`` cache;
2. a fresh canvas of ``canvas_length`` tokens starts from the noise prior and is
   denoised pass by pass; the :class:`~constrained.engine.samplers.Sampler` commits the
   positions it is confident about, the rest go back to noise (``[MASK]`` for masked
   noise; for uniform noise the model's guess, re-drawn at the schedule's rate, as the
   Solver does); an optional validator's implicated positions are re-noised too;
3. the finished block is committed to the cache (one causal pass) and the next canvas
   starts, conditioned on everything before; generation stops early once every item
   has produced ``[EOS]`` (a committed ``[EOS]`` also fills the rest of its canvas with
   ``[PAD]`` at once).

With ``use_cache=False`` every canvas pass recomputes the whole prefix instead (the
baseline the cache is measured against).

With the sampler's ``entropy-bound`` strategy each canvas is denoised by DiffusionGemma's own
loop (``engine/entropy_bound.py``: random canvas, entropy-bounded acceptance, every other
position re-drawn each step, stop once stable and confident); ``content_only=False`` lets every
token of the vocabulary be drawn and sampled, as transformers' ``generate`` does.

Prompts of different lengths batch with ``prompt_mask`` (False at padding, on the left) on
models that take it (``supports_padding``: the DiffusionGemma adapter and ``BlockDiffusionLM``). The output holds
exactly ``max_new_tokens`` tokens per item (the last canvas is cut). The model is anything with the
:class:`BlockModel` methods: the project's ``BlockDiffusionLM`` or the
DiffusionGemma adapter (``engine/gemma.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from constrained.errors import ConfigError, InvalidProblem

from .entropy_bound import add_bans, denoise_entropy_bound
from .noise import NoiseProcess
from .samplers import NEG, Sampler

#: a validator for canvases: tokens [B, K] ([MASK] where not committed) -> violations [B, K] bool
CanvasValidator = Callable[[torch.Tensor], torch.Tensor]


class BlockModel(Protocol):
    canvas_length: int
    max_context: int
    mask_id: int
    eos_id: int
    pad_id: int

    def content_mask(self) -> torch.Tensor: ...
    def new_cache(self, batch: int) -> Any: ...
    def prefill(self, tokens: torch.Tensor, cache: Any) -> None: ...
    def commit(self, tokens: torch.Tensor, cache: Any) -> None: ...
    def canvas_logits(self, canvas: torch.Tensor, cache: Any) -> torch.Tensor: ...
    def full_logits(self, prefix: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor: ...


@dataclass
class BlockConfig:
    """How to decode. ``max_passes`` is per block (default: the canvas length, so the
    at-least-one-per-pass rule always finishes a block)."""

    max_new_tokens: int = 256
    sampler: Sampler = field(default_factory=Sampler)
    max_passes: int | None = None
    use_cache: bool = True
    stop_at_eos: bool = True
    seed: int = 0
    content_only: bool = True  # False: any token id may be drawn and sampled (the raw model, constraints off)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.max_passes is not None and self.max_passes < 1:
            raise ConfigError(f"max_passes must be >= 1, got {self.max_passes}")


@dataclass
class BlockStats:
    """Where a decode's time went. ``forward_seconds`` is the canvas passes' model time,
    ``prefill_seconds`` the prompt prefill and the block commits (also model time)."""

    tokens: int = 0  # tokens produced by the batch (up to and including [EOS])
    batch: int = 1
    passes: int = 0  # canvas passes (each one forward of the whole batch)
    commits: int = 0  # causal passes: the prefill and one per committed block
    blocks: int = 0
    seconds: float = 0.0
    forward_seconds: float = 0.0
    prefill_seconds: float = 0.0
    validator_seconds: float = 0.0
    finalized_per_pass: list[float] = field(default_factory=list)  # tokens committed per item, each pass

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_pass(self) -> float:
        """Output tokens per canvas pass, per item (net: a token re-noised and re-committed counts once)."""
        return self.tokens / max(self.batch, 1) / max(self.passes, 1)

    @property
    def overhead_share(self) -> float:
        """Everything but the model (sampler, noise, validator, bookkeeping) as a share of the time."""
        model = self.forward_seconds + self.prefill_seconds
        return 0.0 if self.seconds == 0 else max(0.0, 1.0 - model / self.seconds)


def _sync(t: torch.Tensor) -> None:
    if t.device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def generate_blocks(model: BlockModel, prompt: torch.Tensor, noise: NoiseProcess,
                    config: BlockConfig | None = None, validator: CanvasValidator | None = None,
                    cache: Any = None, prompt_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, BlockStats]:
    """prompt [B, P] -> (new tokens [B, max_new_tokens] with [PAD] after each item's [EOS], stats).

    Canvases are whole (``max_new_tokens`` rounded up to them); the output is cut to
    ``max_new_tokens``. ``cache`` continues a conversation: a cache from ``model.new_cache`` that
    already holds the earlier tokens (``prompt`` then holds only the new ones). ``prompt_mask``
    [B, P] bool: False at padding, which must precede each row's real tokens (left padding).
    """
    cfg = config or BlockConfig()
    if prompt.dim() != 2 or prompt.shape[1] < 1:
        raise InvalidProblem(f"prompt must be [B, P] with P >= 1, got shape {tuple(prompt.shape)}")
    if prompt_mask is not None:
        if prompt_mask.shape != prompt.shape:
            raise InvalidProblem(f"prompt_mask of shape {tuple(prompt_mask.shape)} for a prompt of "
                                 f"{tuple(prompt.shape)}")
        if not getattr(model, "supports_padding", False):
            raise ConfigError(f"{type(model).__name__} takes no padded prompts: decode each length apart")
        if not bool(prompt_mask[:, -1].all()):
            raise InvalidProblem("prompt_mask: padding goes on the left (every row's last token is real)")
    pad_kw = {} if prompt_mask is None or bool(prompt_mask.all()) else {"mask": prompt_mask}
    B = prompt.shape[0]
    K = model.canvas_length
    n_blocks = -(-cfg.max_new_tokens // K)
    past = 0 if cache is None else cache.length
    total = past + prompt.shape[1] + n_blocks * K
    if total > model.max_context:
        raise InvalidProblem(f"prompt of {prompt.shape[1]} tokens (+{past} cached) plus {n_blocks} canvases "
                             f"of {K} exceed the model's context of {model.max_context} positions")
    device = prompt.device
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    # every id that ends a sequence (DiffusionGemma's chat models: [EOS] and <end_of_turn>)
    eos_ids = torch.as_tensor(getattr(model, "eos_ids", None) or [model.eos_id], device=device)
    content = model.content_mask().to(device)  # [V]
    if not cfg.content_only:
        content = torch.ones_like(content)
    domain = content.expand(B, K, -1)  # [B, K, V]
    # the allowed values as an additive logit bias: one broadcast add per pass, no [B, K, V] mask
    off_allowed = torch.zeros(content.shape, device=device).masked_fill(~content, NEG)
    content_ids = content.nonzero().squeeze(1)  # [C] the tokens the entropy-bound loop draws from
    stats = BlockStats(batch=B)
    t0 = time.perf_counter()

    prefix = prompt
    if cfg.use_cache:
        if cache is None:
            cache = model.new_cache(B)
        tp = time.perf_counter()
        model.prefill(prompt, cache, **pad_kw)
        stats.prefill_seconds += time.perf_counter() - tp
        stats.commits += 1
    elif cache is not None:
        raise ConfigError("use_cache=False recomputes the prefix every pass; do not pass a cache")
    prefix_mask = pad_kw.get("mask")
    entropy_bound = cfg.sampler.strategy == "entropy-bound"

    out = torch.full((B, n_blocks * K), model.pad_id, dtype=torch.long, device=device)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    for b in range(n_blocks):
        if entropy_bound:
            x, n = _entropy_bound_block(model, cache, prefix, prefix_mask, cfg, content_ids, off_allowed, gen,
                                        validator, finished, stats)
            stats.passes += n
        else:
            x = _masked_block(model, cache, prefix, prefix_mask, cfg, noise, validator, gen, content_ids,
                              off_allowed, domain, finished, stats, eos_ids)
        if cfg.stop_at_eos:
            eos_at = torch.isin(x, eos_ids)
            after = eos_at.long().cumsum(1) - eos_at.long() > 0
            x = torch.where(after | finished.unsqueeze(1), torch.full_like(x, model.pad_id), x)
        out[:, b * K : (b + 1) * K] = x
        stats.blocks += 1
        if cfg.stop_at_eos:
            finished |= torch.isin(x, eos_ids).any(1)
            if bool(finished.all()):
                break
        if b < n_blocks - 1:
            if cfg.use_cache:
                tp = time.perf_counter()
                model.commit(x, cache)
                _sync(x)
                stats.prefill_seconds += time.perf_counter() - tp
                stats.commits += 1
            else:
                prefix = torch.cat([prefix, x], 1)
                if prefix_mask is not None:
                    prefix_mask = torch.cat([prefix_mask, torch.ones_like(x, dtype=torch.bool)], 1)
    out = out[:, : cfg.max_new_tokens]
    stats.seconds = time.perf_counter() - t0
    produced = produced_tokens(out, eos_ids, model.pad_id) if cfg.stop_at_eos else None
    stats.tokens = out.numel() if produced is None else int(produced.sum())
    return out, stats


def _canvas_logits(model: BlockModel, cache: Any, prefix: torch.Tensor, prefix_mask: torch.Tensor | None,
                   x: torch.Tensor, stats: BlockStats, use_cache: bool) -> torch.Tensor:
    tf = time.perf_counter()
    if use_cache:
        logits = model.canvas_logits(x, cache)
    else:
        logits = model.full_logits(prefix, x, **({} if prefix_mask is None else {"mask": prefix_mask}))
    _sync(logits)
    stats.forward_seconds += time.perf_counter() - tf
    return logits


def _entropy_bound_block(model: BlockModel, cache: Any, prefix: torch.Tensor, prefix_mask: torch.Tensor | None,
                         cfg: BlockConfig, content_ids: torch.Tensor, off_allowed: torch.Tensor,
                         gen: torch.Generator, validator: CanvasValidator | None, finished: torch.Tensor,
                         stats: BlockStats) -> tuple[torch.Tensor, int]:
    """One canvas by DiffusionGemma's loop (``engine/entropy_bound.py``)."""
    condition = None
    if cfg.use_cache and hasattr(model, "condition_on"):
        def condition(scaled: torch.Tensor) -> None:
            model.condition_on(scaled, cache)
    x, n = denoise_entropy_bound(
        lambda canvas: _canvas_logits(model, cache, prefix, prefix_mask, canvas, stats, cfg.use_cache),
        finished.shape[0], model.canvas_length, content_ids, off_allowed, cfg.sampler, gen,
        condition=condition, validator=validator)
    return x, n


def _masked_block(model: BlockModel, cache: Any, prefix: torch.Tensor, prefix_mask: torch.Tensor | None,
                  cfg: BlockConfig, noise: NoiseProcess, validator: CanvasValidator | None,
                  gen: torch.Generator, content_ids: torch.Tensor, off_allowed: torch.Tensor, domain: torch.Tensor,
                  finished: torch.Tensor, stats: BlockStats, eos_ids: torch.Tensor) -> torch.Tensor:
    """One canvas by the project's loop: commit what the sampler is confident about, re-noise the rest."""
    B, K = domain.shape[:2]
    device = domain.device
    max_passes = cfg.max_passes or K
    no_fixed = torch.zeros(B, K, dtype=torch.bool, device=device)
    x = noise.prior(torch.zeros(B, K, dtype=torch.long, device=device), no_fixed, domain, gen)
    committed = finished.unsqueeze(1).expand(B, K).clone()  # finished items: nothing to do
    x[committed] = model.pad_id
    pred = x
    ban = None  # (item, position, value) ids: values a validator rejected there, barred for this canvas
    for p in range(max_passes):
        if bool(committed.all()):
            break
        logits = _canvas_logits(model, cache, prefix, prefix_mask, x, stats, cfg.use_cache)
        stats.passes += 1
        logits = logits.float().add_(off_allowed)  # logits are this pass's own: add in place
        if ban is not None:
            logits.index_put_(ban, logits.new_tensor(NEG))
        pred, _, commit = cfg.sampler.choose(logits, ~committed, p, generator=gen)
        x = torch.where(commit, pred, x)
        committed = committed | commit
        if cfg.stop_at_eos:  # after a committed [EOS], the rest of the canvas is padding
            eos_at = torch.isin(x, eos_ids) & committed
            after = eos_at.long().cumsum(1) - eos_at.long() > 0
            x = torch.where(after, torch.full_like(x, model.pad_id), x)
            commit = commit | (after & ~committed)
            committed = committed | after
        stats.finalized_per_pass.append(float((commit & (x != model.pad_id)).sum()) / B)
        if validator is not None:
            tv = time.perf_counter()
            view = torch.where(committed, x, torch.full_like(x, model.mask_id))
            bad = validator(view) & committed & ~(x == model.pad_id)
            if bool(bad.any()):
                ban = add_bans(ban, bad, x, content_ids.numel())
            committed = committed & ~bad
            stats.validator_seconds += time.perf_counter() - tv
        # the noise process refills what is not committed (uniform: re-draws at the schedule's level)
        x = noise.refill(x, ~committed, domain, pred, 1.0 - (p + 1) / max_passes, gen)
    x = torch.where(committed, x, pred)  # budget spent: the model's last guess
    return x


_add_bans = add_bans  # its earlier home (tests and callers import it from here)


def produced_tokens(out: torch.Tensor, eos_id: int | torch.Tensor, pad_id: int) -> torch.Tensor:
    """[B] tokens each item produced: up to and including its first [EOS] (all of them if none).
    ``eos_id``: one id, or a tensor of ids that all end a sequence."""
    eos = torch.isin(out, torch.as_tensor(eos_id, device=out.device))
    first = torch.where(eos.any(1), eos.float().argmax(1) + 1, torch.full_like(eos[:, 0], out.shape[1],
                                                                               dtype=torch.long))
    return first


def repetition_validator(n: int = 4, mask_id: int = 1, pad_id: int = 0) -> CanvasValidator:
    """A canvas validator against the failure parallel decoding is known for: a token n-gram
    that repeats the n-gram right before it ("x = x = x = ..."). Flags the repeating copy."""

    def check(tokens: torch.Tensor) -> torch.Tensor:
        B, K = tokens.shape
        bad = torch.zeros(B, K, dtype=torch.bool, device=tokens.device)
        if K < 2 * n:
            return bad
        same = tokens[:, n:] == tokens[:, :-n]  # [B, K-n]: position i+n equals position i
        real = (tokens[:, n:] != mask_id) & (tokens[:, n:] != pad_id)
        run = (same & real).float().unsqueeze(1)  # windows of n consecutive equalities
        full = torch.nn.functional.conv1d(run, torch.ones(1, 1, n)).squeeze(1) >= n  # [B, K-2n+1]
        for k in range(n):
            bad[:, n + k : n + k + full.shape[1]] |= full
        return bad

    return check
