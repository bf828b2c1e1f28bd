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
  does); the canvas is right-padded to the model's canvas length; the context (or a
  ``[BOS]`` token when there is none) is prefilled once and its cache reused while the
  same context comes back.

DiffusionGemma is a uniform-state model: use ``UniformNoise`` with it.

The real checkpoint (``google/diffusiongemma-26B-A4B-it``, ~52 GB in bf16) needs a GPU::

    den = GemmaDenoiser.from_pretrained("google/diffusiongemma-26B-A4B-it",
                                        torch_dtype=torch.bfloat16, device_map="cuda")
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import DynamicCache

from constrained.errors import InvalidProblem, ModelMismatch

from .blockmodel import ModelCache, check_cache_batch, check_cache_owner, config_fingerprint, position_ids


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
        eos = self.text_config.eos_token_id
        return int(eos[0] if isinstance(eos, (list, tuple)) else eos)

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
    def prefill(self, tokens: torch.Tensor, cache: ModelCache) -> None:
        """The encoder: ``tokens`` [B, T] causally into ``cache``."""
        self.check_cache(cache)
        check_cache_batch(tokens, cache)
        pos = self._positions(cache.length, tokens.shape[1])
        self.model.model.encoder(input_ids=tokens, past_key_values=cache.cache, position_ids=pos)

    commit = prefill

    @torch.no_grad()
    def canvas_logits(self, canvas: torch.Tensor, cache: ModelCache) -> torch.Tensor:
        """The decoder: canvas [B, K] against the cache (read-only) -> logits [B, K, V]."""
        self.check_cache(cache)
        if canvas.shape[1] != self.canvas_length:
            raise ModelMismatch(f"canvas of {canvas.shape[1]} tokens: this model was trained for canvases of "
                                f"{self.canvas_length}")
        start = cache.length
        pos = self._positions(start, canvas.shape[1])
        sc = None
        if self.self_conditioning and self._sc is not None:
            cid, clen, last = self._sc
            if cid == id(cache.cache) and clen == start and last.shape[:2] == canvas.shape:
                sc = last
        out = self.model(decoder_input_ids=canvas, past_key_values=cache.cache, decoder_position_ids=pos,
                         self_conditioning_logits=sc)
        logits = out.logits
        if self.self_conditioning:
            self._sc = (id(cache.cache), start, logits.to(self.model.dtype))
        return logits

    @torch.no_grad()
    def full_logits(self, prefix: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
        """No cache kept: encode ``prefix`` afresh, then one canvas pass."""
        cache = self.new_cache(prefix.shape[0])
        self.prefill(prefix, cache)
        sc, self.self_conditioning = self.self_conditioning, False
        try:
            return self.canvas_logits(canvas, cache)
        finally:
            self.self_conditioning = sc

    # --- canvas denoiser for the Solver ----------------------------------------------------
    def _map(self, ids: torch.Tensor) -> torch.Tensor:
        return ids if self.token_map is None else self.token_map[ids]

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, coords: dict[str, torch.Tensor] | None = None,
                context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None,
                **_: Any) -> torch.Tensor:
        """tokens [B, L] (task ids) -> logits [B, L, V_task] (or V_model without a token_map)."""
        B, L = input_ids.shape
        K = self.canvas_length
        if L > K:
            raise ModelMismatch(f"canvas of {L} tokens: this model's canvas holds {K}")
        if context is None or context.shape[1] == 0:
            bos = self.text_config.bos_token_id
            prompt = torch.full((B, 1), self.pad_id if bos is None else int(bos), dtype=torch.long,
                                device=input_ids.device)
        else:
            if context_mask is not None and not bool(context_mask.all()):
                raise InvalidProblem("GemmaDenoiser needs unpadded context (every context_mask True)")
            prompt = self._map(context)
        if self._ctx is None or self._ctx[0].shape != prompt.shape or not torch.equal(self._ctx[0], prompt):
            cache = self.new_cache(B)
            self.prefill(prompt, cache)
            self._ctx = (prompt.clone(), cache)
        cache = self._ctx[1]
        canvas = self._map(input_ids)
        if L < K:
            canvas = torch.cat([canvas, torch.full((B, K - L), self.pad_id, dtype=torch.long,
                                                   device=canvas.device)], 1)
        logits = self.canvas_logits(canvas, cache)[:, :L]
        return logits if self.token_map is None else logits.index_select(-1, self.token_map)
