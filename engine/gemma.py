"""DiffusionGemma backend: ``transformers``' ``DiffusionGemmaForBlockDiffusion`` as a denoiser.

DiffusionGemma splits one set of weights into a causal *encoder* (writes the prompt and
each finished canvas into a KV cache) and a bidirectional *decoder* (denoises the
canvas against that cache, read-only, with self-conditioning on the previous pass's
logits). :class:`GemmaDenoiser` exposes it two ways:

- as a :class:`~constrained.engine.block.BlockModel` (``prefill`` / ``commit`` /
  ``canvas_logits`` / ``full_logits``), so :func:`~constrained.engine.block.generate_blocks`
  runs block-autoregressive diffusion on it with the project's noise processes and samplers;
- as a canvas denoiser (``forward(input_ids, coords, context, context_mask)``), so the
  :class:`~constrained.solver.Solver` runs it under a task's validator. The task's
  vocabulary maps onto the model's ids with ``token_map`` (as ``HFMaskedLMDenoiser``
  does); the canvas is right-padded to the model's canvas length; ``[BOS]`` and the
  context are prefilled once and their cache reused while the same context comes back.

Prompts of different lengths batch together: ``prefill`` takes a padding mask (padding on
the left), the cache remembers it (``ModelCache.key_mask``), and every later pass gives each
row the positions and attention it would have alone.

DiffusionGemma is a uniform-state model: use ``UniformNoise`` with it.

The real checkpoint (``google/diffusiongemma-26B-A4B-it``, ~52 GB in bf16) needs a GPU::

    den = GemmaDenoiser.from_pretrained("google/diffusiongemma-26B-A4B-it",
                                        dtype=torch.bfloat16, device_map="cuda")

(or ``constrained.loading.load_denoiser(task, name, dtype=..., device_map=...)``, which also maps
the task's vocabulary onto the checkpoint's tokenizer).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import DynamicCache

from constrained.errors import ModelMismatch

from .blockmodel import (
    ModelCache,
    check_cache_batch,
    check_cache_owner,
    config_fingerprint,
    left_align,
    padded_positions,
    position_ids,
)


class GemmaDenoiser(nn.Module):
    """Wrap a ``DiffusionGemmaForBlockDiffusion``.

    token_map [V_task] long: model id of each task token (only for Solver use; ``None``: the
    model's own ids). self_conditioning: feed each canvas pass the previous pass's logits,
    as DiffusionGemma's own sampler does (reset at every new canvas).
    """

    def __init__(self, model: nn.Module, token_map: torch.Tensor | None = None,
                 self_conditioning: bool = True) -> None:
        super().__init__()
        if not hasattr(model, "model") or not hasattr(model.model, "encoder"):
            raise ModelMismatch(f"{type(model).__name__} is not a DiffusionGemmaForBlockDiffusion")
        self.model = model
        self.text_config = model.config.text_config
        V = self.text_config.vocab_size
        if token_map is not None:
            token_map = torch.as_tensor(token_map, dtype=torch.long)
            if int(token_map.max()) >= V or int(token_map.min()) < 0:
                raise ModelMismatch(f"token_map has ids outside the model's vocabulary of {V}")
            self.register_buffer("token_map", token_map, persistent=False)
        else:
            self.token_map = None
        self.self_conditioning = self_conditioning
        self._sc: tuple[int, int, torch.Tensor] | None = None  # (cache id, cache length, last logits)
        self._ctx: tuple[torch.Tensor, ModelCache] | None = None  # Solver mode: prefilled context
        self.train(model.training)  # the wrapper starts in the wrapped model's mode

    @classmethod
    def from_pretrained(cls, name_or_path: str, token_map: torch.Tensor | None = None,
                        **kwargs: Any) -> GemmaDenoiser:
        from transformers import DiffusionGemmaForBlockDiffusion

        kwargs.setdefault("use_safetensors", True)
        return cls(DiffusionGemmaForBlockDiffusion.from_pretrained(name_or_path, **kwargs).eval(), token_map)

    @property
    def config(self):
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # --- BlockModel ---------------------------------------------------------------------
    @property
    def canvas_length(self) -> int:
        return int(self.model.config.canvas_length)

    @property
    def max_context(self) -> int:
        return int(self.text_config.max_position_embeddings)

    @property
    def pad_id(self) -> int:
        return int(self.text_config.pad_token_id)

    @property
    def mask_id(self) -> int:
        """Uniform-state model: no mask token; [PAD] stands in where an empty position must be shown."""
        return self.pad_id

    @property
    def eos_id(self) -> int:
        return self.eos_ids[0]

    @property
    def eos_ids(self) -> list[int]:
        """Every id that ends a sequence: the generation config's (chat checkpoints add <end_of_turn>),
        else the model config's."""
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = getattr(self.model.config, "eos_token_id", None)
        if eos is None:
            eos = self.text_config.eos_token_id
        return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]

    def content_mask(self) -> torch.Tensor:
        m = torch.ones(self.text_config.vocab_size, dtype=torch.bool)
        m[self.pad_id] = False
        for name in ("image_token_id", "boi_token_id", "eoi_token_id"):
            i = getattr(self.model.config, name, None)
            if i is not None and 0 <= i < m.numel():
                m[i] = False
        return m

    def new_cache(self, batch: int) -> ModelCache:
        return ModelCache(DynamicCache(config=self.text_config), config_fingerprint(self.text_config), batch)

    def check_cache(self, cache: ModelCache) -> None:
        check_cache_owner(cache, config_fingerprint(self.text_config))

    def _positions(self, start: int, n: int) -> torch.Tensor:
        return position_ids(start, n, self.max_context, self.device)

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor, cache: ModelCache, mask: torch.Tensor | None = None) -> None:
        """The encoder: ``tokens`` [B, T] causally into ``cache``. ``mask`` [B, T] bool (False at padding,
        which must be on the left of a row's real tokens): each row gets the positions and attention it
        would have alone."""
        self.check_cache(cache)
        check_cache_batch(tokens, cache)
        B, T = tokens.shape
        if mask is None and cache.key_mask is None:
            pos = self._positions(cache.length, T)
            self.model.model.encoder(input_ids=tokens, cache=cache.cache, position_ids=pos)
            return
        new = torch.ones(B, T, dtype=torch.bool, device=tokens.device) if mask is None else mask.bool()
        past = cache.key_mask if cache.key_mask is not None else torch.ones(
            B, cache.length, dtype=torch.bool, device=tokens.device)
        keys = torch.cat([past, new], 1)
        self._positions(int(keys.sum(1).max()) - T, T)  # refused past the model's context
        self.model.model.encoder(input_ids=tokens, cache=cache.cache, attention_mask=keys,
                                 position_ids=padded_positions(keys, T))
        cache.key_mask = keys

    commit = prefill
    supports_padding = True  # prefill takes a padding mask
    #: the noise process DiffusionGemma is trained with
    default_noise = "uniform"

    def canvas_logits(self, canvas: torch.Tensor, cache: ModelCache) -> torch.Tensor:
        """The decoder: canvas [B, K] against the cache (read-only) -> logits [B, K, V]."""
        self.check_cache(cache)
        if canvas.shape[1] != self.canvas_length:
            raise ModelMismatch(f"canvas of {canvas.shape[1]} tokens: this model was trained for canvases of "
                                f"{self.canvas_length}")
        start = cache.length
        K = canvas.shape[1]
        kw: dict[str, Any] = {}
        if cache.key_mask is None:
            kw["decoder_position_ids"] = self._positions(start, K)
        else:
            real = cache.key_mask.sum(1, keepdim=True)  # [B, 1]
            self._positions(int(real.max()), K)
            kw["decoder_position_ids"] = real + torch.arange(K, device=canvas.device)
            kw["decoder_attention_mask"] = torch.cat([cache.key_mask, torch.ones_like(canvas, dtype=torch.bool)], 1)
        sc = None
        use_sc = self.self_conditioning and not self.training
        if use_sc and self._sc is not None:
            cid, clen, last = self._sc
            if cid == id(cache.cache) and clen == start and last.shape[:2] == canvas.shape:
                sc = last
        out = self.model(decoder_input_ids=canvas, cache=cache.cache, self_conditioning_logits=sc, **kw)
        logits = out.logits
        if use_sc:
            self._sc = (id(cache.cache), start, logits.detach().to(self.model.dtype))
        return logits

    def condition_on(self, logits: torch.Tensor, cache: ModelCache) -> None:
        """Use ``logits`` [B, K, V] as the self-conditioning signal of the next pass over this cache
        (DiffusionGemma's own sampler feeds back its temperature-scaled logits, not the raw ones)."""
        if self.self_conditioning:
            self._sc = (id(cache.cache), cache.length, logits.detach().to(self.model.dtype))

    @torch.no_grad()
    def full_logits(self, prefix: torch.Tensor, canvas: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """No cache kept: encode ``prefix`` afresh (``mask``: its padding), then one canvas pass."""
        cache = self.new_cache(prefix.shape[0])
        self.prefill(prefix, cache, mask)
        sc, self.self_conditioning = self.self_conditioning, False
        try:
            return self.canvas_logits(canvas, cache)
        finally:
            self.self_conditioning = sc

    # --- canvas denoiser for the Solver ----------------------------------------------------
    def _map(self, ids: torch.Tensor) -> torch.Tensor:
        return ids if self.token_map is None else self.token_map[ids]

    def forward(self, input_ids: torch.Tensor, coords: dict[str, torch.Tensor] | None = None,
                context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None,
                **_: Any) -> torch.Tensor:
        """tokens [B, L] (task ids) -> logits [B, L, V_task] (or V_model without a token_map).

        context [B, C] (task ids) with ``context_mask`` (True at real tokens; padding anywhere) is the
        prompt, prefilled once and reused while the same context comes back (in eval mode; in training
        mode it is prefilled afresh each call, as the weights change). Differentiable in the canvas pass
        (the prompt's cache is computed without gradients), so LoRA trains the decoder path."""
        B, L = input_ids.shape
        K = self.canvas_length
        if L > K:
            raise ModelMismatch(f"canvas of {L} tokens: this model's canvas holds {K}")
        bos = self.text_config.bos_token_id
        lead = torch.full((B, 1), self.pad_id if bos is None else int(bos), dtype=torch.long,
                          device=input_ids.device)
        pmask = None
        if context is None or context.shape[1] == 0:
            prompt = lead
        else:
            prompt = torch.cat([lead, self._map(context)], 1)
            if context_mask is not None and not bool(context_mask.all()):
                pmask = torch.cat([torch.ones_like(lead, dtype=torch.bool), context_mask.bool()], 1)
                prompt, pmask = left_align(prompt, pmask)
        key = prompt if pmask is None else torch.where(pmask, prompt, torch.full_like(prompt, -1))
        if self.training or self._ctx is None or self._ctx[0].shape != key.shape or not torch.equal(self._ctx[0], key):
            cache = self.new_cache(B)
            self.prefill(prompt, cache, pmask)
            self._ctx = None if self.training else (key.clone(), cache)
        else:
            cache = self._ctx[1]
        canvas = self._map(input_ids)
        if L < K:
            canvas = torch.cat([canvas, torch.full((B, K - L), self.pad_id, dtype=torch.long,
                                                   device=canvas.device)], 1)
        logits = self.canvas_logits(canvas, cache)[:, :L]
        return logits if self.token_map is None else logits.index_select(-1, self.token_map)
