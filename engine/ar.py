"""The autoregressive baseline: a ``LlamaForCausalLM`` of exactly the block-diffusion
model's size (``engine/blockmodel.py``), trained on the same tokens, decoded one token
per forward pass with a ``transformers`` ``DynamicCache``.

Trained with fill-in-the-middle (``engine/corpus.py: fim_permute``), it also infills:
``psm_infill`` prompts ``[PRE] prefix [SUF] suffix [MID]`` and decodes the middle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from constrained.errors import ConfigError, InvalidProblem, ModelMismatch

from .blockmodel import BlockDiffusionConfig
from .corpus import EOS, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX


def ar_config_like(block: BlockDiffusionConfig) -> LlamaConfig:
    """The baseline's config: the block-diffusion model's architecture, minus the canvas."""
    d = block.to_dict()
    drop = ("canvas_length", "noise", "mask_token_id", "non_content_ids", "model_type", "architectures",
            "transformers_version")
    for k in drop:
        d.pop(k, None)
    d["attn_implementation"] = "sdpa"
    return LlamaConfig(**d)


@dataclass
class ARStats:
    """Where an AR decode's time went. ``passes`` counts forward passes after the prefill."""

    tokens: int = 0  # tokens produced (up to and including [EOS])
    passes: int = 0
    seconds: float = 0.0
    forward_seconds: float = 0.0  # prefill + every decode step's forward

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def overhead_share(self) -> float:
        return 0.0 if self.seconds == 0 else 1.0 - self.forward_seconds / self.seconds


def _sync(t: torch.Tensor) -> None:
    if t.device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def ar_generate(model: LlamaForCausalLM, prompt: torch.Tensor, max_new_tokens: int, *,
                temperature: float = 0.0, stop_at_eos: bool = True,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, ARStats]:
    """Greedy (or sampled, ``temperature`` > 0) decoding with a KV cache.

    prompt [B, P] -> (new tokens [B, max_new_tokens] with [PAD] after an item's [EOS], stats).
    """
    model.eval()
    B, P = prompt.shape
    ctx = int(model.config.max_position_embeddings)
    if P + max_new_tokens > ctx:
        raise InvalidProblem(f"prompt of {P} tokens plus {max_new_tokens} new ones exceed the model's "
                             f"context of {ctx} positions")
    eos, pad = model.config.eos_token_id, model.config.pad_token_id
    stats = ARStats()
    t0 = time.perf_counter()
    cache = DynamicCache(config=model.config)
    tf = time.perf_counter()
    logits = model(input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    _sync(logits)
    stats.forward_seconds += time.perf_counter() - tf
    out = torch.full((B, max_new_tokens), pad, dtype=torch.long, device=prompt.device)
    done = torch.zeros(B, dtype=torch.bool, device=prompt.device)
    produced = torch.zeros(B, dtype=torch.long, device=prompt.device)
    for i in range(max_new_tokens):
        if temperature > 0:
            probs = torch.softmax(logits.float() / temperature, -1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        else:
            nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        out[:, i] = nxt
        produced += (~done).long()
        if stop_at_eos and eos is not None:
            done |= nxt == eos
            if bool(done.all()):
                break
        if i == max_new_tokens - 1:
            break
        tf = time.perf_counter()
        logits = model(input_ids=nxt.unsqueeze(1), past_key_values=cache, use_cache=True).logits[:, -1]
        _sync(logits)
        stats.forward_seconds += time.perf_counter() - tf
        stats.passes += 1
    stats.passes += 1  # the prefill pass produced the first token
    stats.tokens = int(produced.sum())
    stats.seconds = time.perf_counter() - t0
    return out, stats


@torch.no_grad()
def continuation_nll(model: LlamaForCausalLM, prefix: torch.Tensor, continuation: torch.Tensor,
                     pad_id: int | None = None) -> torch.Tensor:
    """Per-item mean negative log-likelihood [B] of ``continuation`` [B, N] after ``prefix`` [B, P]
    under an AR model (positions holding ``pad_id`` are not scored). exp() of it is a perplexity."""
    x = torch.cat([prefix, continuation], 1)
    logits = model(input_ids=x, use_cache=False).logits[:, prefix.shape[1] - 1 : -1].float()
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), continuation, reduction="none")
    keep = torch.ones_like(continuation, dtype=torch.bool) if pad_id is None else continuation != pad_id
    return (nll * keep).sum(1) / keep.sum(1).clamp(min=1)


def psm_prompt(tokenizer: Any, prefix: str, suffix: str, room: int) -> list[int]:
    """Prefix-suffix-middle prompt ids: ``[PRE] prefix [SUF] suffix [MID]`` in at most ``room`` ids.

    Prefix and suffix are tokenized separately; when they do not fit, the end of the prefix and
    the start of the suffix (the text nearest the hole) are kept, the suffix getting at least half
    of the room it needs."""
    ids = [tokenizer.token_to_id(t) for t in (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE)]
    if any(i is None for i in ids):
        raise ConfigError(f"the tokenizer lacks the fill-in-the-middle tokens {FIM_PREFIX} {FIM_SUFFIX} "
                          f"{FIM_MIDDLE}: this model was not trained for infilling")
    room -= 3
    if room < 0:
        raise InvalidProblem(f"no room for a prefix-suffix-middle prompt in {room + 3} tokens")
    p = tokenizer.encode(prefix).ids
    s = tokenizer.encode(suffix).ids
    s_keep = min(len(s), max(room // 2, room - len(p)))
    p_keep = min(len(p), room - s_keep)
    return [ids[0], *p[len(p) - p_keep :], ids[1], *s[:s_keep], ids[2]]


def psm_infill(model: LlamaForCausalLM, tokenizer: Any, prefix: str, suffix: str, max_new_tokens: int = 64,
               *, max_context: int | None = None) -> str:
    """The middle an AR model trained with fill-in-the-middle writes between ``prefix`` and ``suffix``.

    Prompts ``[PRE] prefix [SUF] suffix [MID]`` (``psm_prompt``) and decodes greedily with a KV cache
    until ``[EOS]`` or ``max_new_tokens``; returns the decoded middle (without ``[EOS]``). The prompt and
    the middle are kept within ``max_context`` tokens (default: the config's ``train_length``, the longest
    sequence the model was trained on, else its position limit).
    """
    if max_new_tokens < 1:
        raise InvalidProblem(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    eos = tokenizer.token_to_id(EOS)
    if eos is None or eos != model.config.eos_token_id:
        raise ModelMismatch(f"the tokenizer's {EOS} id {eos} is not the model's eos_token_id "
                            f"{model.config.eos_token_id}: tokenizer and model do not belong together")
    if tokenizer.get_vocab_size() > model.config.vocab_size:
        raise ModelMismatch(f"tokenizer of {tokenizer.get_vocab_size()} ids for a model of "
                            f"{model.config.vocab_size}")
    ctx = max_context or int(getattr(model.config, "train_length", 0) or model.config.max_position_embeddings)
    if max_new_tokens + 3 > ctx:
        raise InvalidProblem(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in a context "
                             f"of {ctx} tokens")
    ids = psm_prompt(tokenizer, prefix, suffix, ctx - max_new_tokens)
    prompt = torch.tensor([ids], dtype=torch.long, device=model.device)
    out, _ = ar_generate(model, prompt, max_new_tokens, stop_at_eos=True)
    row = out[0].tolist()
    middle = row[: row.index(eos)] if eos in row else row
    return tokenizer.decode(middle)
