"""The project's own block-diffusion language model: a decoder (Llama-style) transformer
whose one set of weights serves both DiffusionGemma roles.

- **prefill / commit** (the "encoder"): the prompt, and each finished block, run with
  causal attention and their keys/values are appended to a ``transformers``
  ``DynamicCache``;
- **canvas pass** (the "decoder"): the canvas of ``canvas_length`` tokens attends
  bidirectionally inside itself and to every cached key/value, which is read, never
  recomputed and never written (a read-through view of the cache).

The model is a ``LlamaForCausalLM`` with a config that records its canvas length and
noise, so it has exactly the architecture and size of the autoregressive baseline
(``engine/ar.py``): the comparison between the two is fair by construction.

Training (``diffusion_loss``) follows the same masks: a causal prompt of random length,
then one noisy block that attends to the prompt and bidirectionally to itself.

``shift=True`` (the config's switch; Dream's adaptation of an autoregressive model): the
logits of canvas position j come from the hidden state of position j - 1, as in the
autoregressive model the weights may start from (``lm_train --init-from-ar``). The last
committed token then joins every canvas pass as its first position (it is held back from
the cache, "pending", and written causally when the next tokens are committed), so the
canvas's first token is predicted from it and the cached keys/values stay exactly causal.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from transformers import AutoConfig, DynamicCache, LlamaConfig, LlamaForCausalLM

from constrained.errors import ConfigError, InvalidProblem, ModelMismatch

from .noise import NoiseProcess


class BlockDiffusionConfig(LlamaConfig):
    model_type = "constrained-block-diffusion"

    def __init__(self, canvas_length: int = 256, noise: str = "mask", mask_token_id: int = 1,
                 non_content_ids: list[int] | None = None, shift: bool = False, **kwargs: Any) -> None:
        self.canvas_length = canvas_length
        self.noise = noise
        #: logits of canvas position j from the hidden state of j - 1 (see the module's docstring)
        self.shift = bool(shift)
        self.mask_token_id = mask_token_id
        #: context-only token ids (separators, sentinels) a canvas never holds, besides [PAD] and [MASK]
        self.non_content_ids = list(non_content_ids or [])
        super().__init__(**kwargs)


def config_fingerprint(config: Any) -> str:
    """A short hash of what makes two models' caches interchangeable (shapes, vocab, rope)."""
    keys = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "intermediate_size", "rope_parameters", "canvas_length", "shift")
    d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    blob = json.dumps({k: d.get(k) for k in keys}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def check_cache_owner(cache: Any, fingerprint: str) -> None:
    """A cache must come from ``new_cache()`` of a model with this config fingerprint."""
    if not isinstance(cache, ModelCache):
        raise ModelMismatch(f"expected a cache made by model.new_cache(), got {type(cache).__name__}")
    if cache.owner != fingerprint:
        raise ModelMismatch(f"this KV cache was written by another model (config {cache.owner}); "
                            f"this model is {fingerprint}: start a new cache with model.new_cache()")


def check_cache_batch(tokens: torch.Tensor, cache: ModelCache) -> None:
    if tokens.shape[0] != cache.batch:
        raise InvalidProblem(f"batch of {tokens.shape[0]} does not match the cache's batch of {cache.batch}")


def position_ids(start: int, n: int, max_context: int, device: torch.device) -> torch.Tensor:
    """[1, n] positions start..start+n-1, refused past the model's context."""
    if start + n > max_context:
        raise InvalidProblem(f"{start} cached tokens plus {n} new ones exceed the model's context of "
                             f"{max_context} positions")
    return torch.arange(start, start + n, device=device).unsqueeze(0)


class ModelCache:
    """A ``DynamicCache`` tagged with the model that wrote it and how many tokens it holds.

    ``cache`` is the transformers cache object itself (usable with any transformers code).
    ``pending`` ([B, 1], shifted models only) is the last committed token, not yet in ``cache``.
    """

    def __init__(self, cache: DynamicCache, owner: str, batch: int) -> None:
        self.cache = cache
        self.owner = owner
        self.batch = batch
        self.pending: torch.Tensor | None = None
        #: [B, S] bool, True at real (not padding) cached tokens; None: no padding anywhere
        self.key_mask: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """Tokens committed so far (the pending one included)."""
        return self.cache.get_seq_length() + (0 if self.pending is None else self.pending.shape[1])


def left_align(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's padding (``mask`` False) to its left, keeping the order of its real tokens:
    tokens, mask [B, T] -> the same, left-padded, so a row's last real token is its last token."""
    order = torch.sort(mask.long(), dim=1, stable=True).indices
    return tokens.gather(1, order), mask.gather(1, order)


def padded_positions(key_mask: torch.Tensor, n_new: int) -> torch.Tensor:
    """[B, n_new] position ids of the last ``n_new`` keys of ``key_mask`` [B, S]: each row counts its
    real tokens only, so a left-padded row has the positions it would have alone (padding: 0)."""
    return (key_mask.long().cumsum(1) - 1).clamp(min=0)[:, key_mask.shape[1] - n_new :]


class _ReadThrough:
    """Attention reads ``cached ++ new`` keys/values; the cache itself is left as it was."""

    def __init__(self, cache: DynamicCache) -> None:
        self.cache = cache
        self.is_compileable = False

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        layer = self.cache.layers[layer_idx]
        if getattr(layer, "keys", None) is None or layer.keys.numel() == 0:
            return key_states, value_states
        return torch.cat([layer.keys, key_states], dim=-2), torch.cat([layer.values, value_states], dim=-2)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.cache.get_seq_length(layer_idx)


class BlockDiffusionLM(LlamaForCausalLM):
    """tokens -> logits; prefill/commit causally into a cache, denoise a canvas against it."""

    config_class = BlockDiffusionConfig

    # --- what the block engine needs ------------------------------------------------------
    @property
    def canvas_length(self) -> int:
        return int(self.config.canvas_length)

    @property
    def max_context(self) -> int:
        return int(self.config.max_position_embeddings)

    @property
    def mask_id(self) -> int:
        return int(self.config.mask_token_id)

    @property
    def eos_id(self) -> int:
        return int(self.config.eos_token_id)

    @property
    def pad_id(self) -> int:
        return int(self.config.pad_token_id)

    def content_mask(self) -> torch.Tensor:
        """[V] bool: tokens a canvas position may hold ([EOS] and ordinary tokens; not [PAD], [MASK]
        or the config's ``non_content_ids``)."""
        m = torch.ones(self.config.vocab_size, dtype=torch.bool)
        m[self.pad_id] = False
        m[self.mask_id] = False
        m[list(getattr(self.config, "non_content_ids", None) or [])] = False
        return m

    def new_cache(self, batch: int) -> ModelCache:
        return ModelCache(DynamicCache(config=self.config), config_fingerprint(self.config), batch)

    def check_cache(self, cache: ModelCache) -> None:
        check_cache_owner(cache, config_fingerprint(self.config))

    def _positions(self, start: int, n: int) -> torch.Tensor:
        return position_ids(start, n, self.max_context, self.device)

    @property
    def shifted(self) -> bool:
        return bool(getattr(self.config, "shift", False))

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor, cache: ModelCache, mask: torch.Tensor | None = None) -> None:
        """Run ``tokens`` [B, T] causally; append their keys/values to ``cache`` (prompt, finished block).

        ``mask`` [B, T] bool: False at padding, which goes on the left of each row (its last token is
        real); every later pass gives a row the positions and attention it would have alone.
        Shifted models hold the last token back (``cache.pending``): it joins the next canvas pass."""
        self.check_cache(cache)
        check_cache_batch(tokens, cache)
        if mask is not None and not bool(mask[:, -1].all()):
            raise InvalidProblem("padding goes on the left: every row's last token must be real")
        if self.shifted:
            if cache.pending is not None:
                tokens = torch.cat([cache.pending, tokens], 1)
                mask = None if mask is None else torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
            cache.pending, tokens = tokens[:, -1:], tokens[:, :-1]
            mask = None if mask is None else mask[:, :-1]
            if tokens.shape[1] == 0:
                return
        past, T = cache.cache.get_seq_length(), tokens.shape[1]
        if mask is None and cache.key_mask is None:
            pos = self._positions(past, T)
            self.model(input_ids=tokens, position_ids=pos, past_key_values=cache.cache, use_cache=True)
            return
        keys = torch.cat([
            torch.ones(tokens.shape[0], past, dtype=torch.bool, device=tokens.device) if cache.key_mask is None
            else cache.key_mask,
            torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask.bool()], 1)  # [B, past + T]
        self._positions(int(keys.sum(1).max()) - T, T)
        i = torch.arange(past, past + T, device=tokens.device)[:, None]
        j = torch.arange(past + T, device=tokens.device)[None, :]
        attend = (keys[:, None, :] & (j <= i)) | (j == i)  # causal over real keys; padding sees itself (no NaN)
        self.model(input_ids=tokens, position_ids=padded_positions(keys, T), attention_mask=attend[:, None],
                   past_key_values=cache.cache, use_cache=True)
        cache.key_mask = keys

    commit = prefill
    supports_padding = True  # prefill and full_logits take a padding mask

    def _check_canvas(self, canvas: torch.Tensor) -> None:
        if canvas.shape[1] != self.canvas_length:
            raise ModelMismatch(f"canvas of {canvas.shape[1]} tokens: this model was trained for canvases of "
                                f"{self.canvas_length}")

    @torch.no_grad()
    def canvas_logits(self, canvas: torch.Tensor, cache: ModelCache) -> torch.Tensor:
        """canvas [B, K] -> logits [B, K, V]; the canvas attends to every cached token and to itself."""
        self.check_cache(cache)
        self._check_canvas(canvas)
        K = canvas.shape[1]
        if self.shifted:
            if cache.pending is None:
                raise InvalidProblem("this model predicts each token from the one before it: prefill a prompt "
                                     "of at least one token before the first canvas")
            canvas = torch.cat([cache.pending, canvas], 1)
        start = cache.cache.get_seq_length()
        n = canvas.shape[1]
        if cache.key_mask is None:
            pos = self._positions(start, n)
            mask = torch.ones(1, 1, n, start + n, dtype=torch.bool, device=self.device)
        else:
            real = cache.key_mask.sum(1, keepdim=True)  # [B, 1]
            self._positions(int(real.max()), n)
            pos = real + torch.arange(n, device=canvas.device)
            keys = torch.cat([cache.key_mask, torch.ones_like(canvas, dtype=torch.bool)], 1)
            mask = keys[:, None, None, :].expand(-1, 1, n, -1)
        out = self.model(input_ids=canvas, position_ids=pos, attention_mask=mask,
                         past_key_values=_ReadThrough(cache.cache), use_cache=False)
        return self.lm_head(out.last_hidden_state[:, :K])  # shifted: the pending token's state predicts canvas 0

    @torch.no_grad()
    def full_logits(self, prefix: torch.Tensor, canvas: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """No cache: recompute ``prefix`` [B, T] (causal; ``mask``: its left padding) with ``canvas`` [B, K]
        -> logits [B, K, V]."""
        self._check_canvas(canvas)
        T, K = prefix.shape[1], canvas.shape[1]
        lead = 1 if self.shifted else 0
        if lead and T < 1:
            raise InvalidProblem("this model predicts each token from the one before it: give a prefix of at "
                                 "least one token")
        if mask is None:
            pos = self._positions(0, T + K)
            mask = block_mask(T - lead, K + lead, device=self.device)
        else:
            keys = torch.cat([mask.bool(), torch.ones_like(canvas, dtype=torch.bool)], 1)  # [B, T + K]
            self._positions(0, int(keys.sum(1).max()))
            pos = padded_positions(keys, T + K)
            eye = torch.eye(T + K, dtype=torch.bool, device=self.device)
            mask = (block_mask(T - lead, K + lead, device=self.device) & keys[:, None, None, :]) | eye
        out = self.model(input_ids=torch.cat([prefix, canvas], 1), position_ids=pos, attention_mask=mask,
                         use_cache=False)
        return self.lm_head(out.last_hidden_state[:, T - lead : T - lead + K])

    # --- training -------------------------------------------------------------------------
    def diffusion_loss(self, x0: torch.Tensor, prompt_len: int, noise: NoiseProcess,
                       generator: torch.Generator | None = None, stratified: bool = False) -> torch.Tensor:
        """x0 [B, P + K] clean tokens: the first ``prompt_len`` are the causal prompt, the last K the block
        to denoise. Returns the noise process's loss on the block.

        ``stratified`` draws the batch's noise levels low-discrepancy (MDLM): one uniform offset,
        then evenly spaced, t_i = (u + i / B) mod 1, so every batch spans the levels (lower variance)."""
        B, S = x0.shape
        K = S - prompt_len
        if K != self.canvas_length:
            raise ConfigError(f"training block of {K} tokens; the model's canvas is {self.canvas_length}")
        block = x0[:, prompt_len:]
        fixed = torch.zeros_like(block, dtype=torch.bool)
        domain = self.content_mask().to(x0.device).expand(B, K, -1)
        t = noise.sample_t(B, generator=generator, device=x0.device)
        if stratified:
            u = (t[:1] - noise.eps) / (1 - noise.eps)
            t = noise.eps + (1 - noise.eps) * ((u + torch.arange(B, device=x0.device) / B) % 1.0)
        xt, corrupted = noise.corrupt(block, t, fixed, domain, generator)
        lead = 1 if self.shifted else 0  # shifted: the prompt's last token joins the block (see canvas_logits)
        if lead and prompt_len < 1:
            raise ConfigError("a shifted model trains with prompts of at least one token")
        mask = block_mask(prompt_len - lead, K + lead, device=x0.device)
        out = self.model(input_ids=torch.cat([x0[:, :prompt_len], xt], 1), attention_mask=mask,
                         position_ids=torch.arange(S, device=x0.device).unsqueeze(0), use_cache=False)
        logits = self.lm_head(out.last_hidden_state[:, prompt_len - lead : prompt_len - lead + K])
        return noise.loss(logits, block, corrupted, t, fixed)


def block_mask(prefix: int, canvas: int, device: torch.device | str | None = None) -> torch.Tensor:
    """[1, 1, T+K, T+K] bool: the prefix is causal; the canvas sees the whole prefix and all of itself."""
    n = prefix + canvas
    i = torch.arange(n, device=device)
    causal = i[:, None] >= i[None, :]
    canvas_row = (i >= prefix)[:, None]
    return (causal | canvas_row).view(1, 1, n, n)


def block_config(vocab_size: int, canvas_length: int, noise: str = "mask", *, hidden_size: int = 128,
                 num_hidden_layers: int = 4, num_attention_heads: int = 4, intermediate_size: int = 384,
                 max_position_embeddings: int = 8192, eos_token_id: int = 2,
                 non_content_ids: list[int] | None = None, **kw: Any) -> BlockDiffusionConfig:
    return BlockDiffusionConfig(
        canvas_length=canvas_length, noise=noise, mask_token_id=1, non_content_ids=non_content_ids,
        vocab_size=vocab_size,
        hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
        num_key_value_heads=num_attention_heads, intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings, pad_token_id=0, eos_token_id=eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True, attn_implementation="sdpa", **kw)


AutoConfig.register(BlockDiffusionConfig.model_type, BlockDiffusionConfig)
