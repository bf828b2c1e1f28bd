"""A block-diffusion language model as a canvas denoiser for infilling.

:class:`PSMDenoiser` reads a canvas (the hole) and its context (the code before and after
it) the way an autoregressive model trained with fill-in-the-middle reads an infilling
prompt: ``[PRE] prefix [SUF] suffix [MID]`` runs causally, the canvas after it is denoised
bidirectionally (block diffusion), and, as in Dream's adaptation of an AR model (``shift``),
the logits for canvas position j are read at position j - 1, so the ``[MID]`` token's state
predicts the hole's first token exactly as the AR model's next-token head did. It can thus
start from the weights of the project's AR baseline (``constrained/models/code-ar``) and keep
what that model learned of the language, which a denoiser trained from scratch on a CPU does
not reach.

It takes the same inputs as :class:`~constrained.engine.model.DenoiserModel` (``input_ids``
[B, K], ``context`` [B, C]), so the Solver, ``transformers.Trainer`` and the task's collator
use it unchanged. The context must follow the layout of the code tasks: the prefix window,
left-padded with ``[PAD]``, then ``[SEP]`` at a fixed column (``config.context_split``), then the
suffix window, right-padded.
Padding is skipped: it is masked out of attention and does not advance the positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig
from transformers.modeling_outputs import MaskedLMOutput

from .blockmodel import BlockDiffusionConfig, BlockDiffusionLM, block_mask


class PSMDenoiserConfig(BlockDiffusionConfig):
    model_type = "constrained-psm-denoiser"

    def __init__(self, prefix_token_id: int = 1020, suffix_token_id: int = 1021, middle_token_id: int = 1022,
                 sep_token_id: int = 1017, context_split: int = 129, task: str | None = None,
                 vocab_tokens: list[str] | None = None, coord_sizes: dict[str, int] | None = None,
                 domain_input: bool = False, **kwargs: Any) -> None:
        #: the context's column of the [SEP] between the prefix and the suffix windows (the task's
        #: prefix_tokens + 1); found by place, not by id, since source text may hold the string "[SEP]"
        self.context_split = context_split
        self.prefix_token_id = prefix_token_id
        self.suffix_token_id = suffix_token_id
        self.middle_token_id = middle_token_id
        self.sep_token_id = sep_token_id
        self.task = task
        self.vocab_tokens = list(vocab_tokens) if vocab_tokens is not None else None
        self.coord_sizes = dict(coord_sizes or {})  # none: positions come from the prompt order
        self.domain_input = bool(domain_input)
        kwargs.setdefault("shift", True)
        super().__init__(**kwargs)


class PSMDenoiser(BlockDiffusionLM):
    """canvas [B, K] + context ``[prefix..., SEP, suffix...]`` [B, C] -> canvas logits [B, K, V]."""

    config_class = PSMDenoiserConfig

    def _prompt(self, context: torch.Tensor) -> torch.Tensor:
        """[B, C + 3]: ``[PRE] prefix [SUF] suffix [MID]`` (padding left where the context had it)."""
        cfg = self.config
        at = cfg.context_split
        if context.shape[1] <= at or not bool((context[:, at] == cfg.sep_token_id).all()):
            raise ValueError(
                f"a prefix-suffix-middle denoiser needs the context's [SEP] (id {cfg.sep_token_id}) at column "
                f"{at}, between the prefix and the suffix windows: this model was trained with "
                f"prefix_tokens={at - 1}; a context of {context.shape[1]} columns does not have it there")
        # prefix, [SUF] (in the [SEP]'s place), suffix
        ordered = context.clone()
        ordered[:, at] = cfg.suffix_token_id
        pre = torch.full_like(context[:, :1], cfg.prefix_token_id)
        mid = torch.full_like(context[:, :1], cfg.middle_token_id)
        return torch.cat([pre, ordered, mid], 1)

    def forward(self, input_ids: torch.Tensor, coords: dict[str, torch.Tensor] | None = None,
                context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None,
                **_: Any) -> MaskedLMOutput:
        K = input_ids.shape[1]
        if context is None:
            raise ValueError("a prefix-suffix-middle denoiser needs the context (prefix, [SEP], suffix)")
        if context_mask is not None:
            context = torch.where(context_mask, context, torch.zeros_like(context))
        prompt = self._prompt(context)  # [B, T]
        T = prompt.shape[1]
        seq = torch.cat([prompt, input_ids], 1)  # [B, N]
        N = T + K
        real = seq != self.config.pad_token_id
        real[:, T:] = True  # canvas [PAD]s are tokens (the end of the hole), not padding
        pos = (real.long().cumsum(1) - 1).clamp(min=0)
        # block of the shifted model: [MID] (the last prompt token) and the canvas, bidirectional;
        # no query attends to padding, and padding rows see themselves (no empty softmax)
        start = T - 1 if self.shifted else T
        mask = block_mask(start, N - start, device=seq.device) & real[:, None, None, :]  # [B, 1, N, N]
        mask = mask | torch.eye(N, dtype=torch.bool, device=seq.device)
        out = self.model(input_ids=seq, position_ids=pos, attention_mask=mask, use_cache=False)
        hidden = out.last_hidden_state[:, start: start + K]
        return MaskedLMOutput(logits=self.lm_head(hidden))


def psm_denoiser_from_ar(ar_dir: str | Path, task, canvas_length: int, noise: str = "mask") -> PSMDenoiser:
    """A :class:`PSMDenoiser` for ``task`` with every weight of the Llama AR model at ``ar_dir``
    (trained with fill-in-the-middle on the task's tokenizer): the same architecture, shifted."""
    from transformers import LlamaForCausalLM

    from constrained.errors import ConfigError

    ar_dir = Path(ar_dir)
    if not (ar_dir / "config.json").exists():
        raise ConfigError(f"model.init_from_ar = {str(ar_dir)!r}: no config.json there")
    ac = AutoConfig.from_pretrained(ar_dir)
    if ac.model_type != "llama":
        raise ConfigError(f"model.init_from_ar = {str(ar_dir)!r} is a {ac.model_type!r} model, "
                          "not a Llama AR model")
    if ac.vocab_size != len(task.vocab):
        raise ConfigError(f"model.init_from_ar = {str(ar_dir)!r} has {ac.vocab_size} token ids; task "
                          f"{task.name!r} has {len(task.vocab)}")
    ids = {}
    for name in ("[PRE]", "[SUF]", "[MID]", "[SEP]"):
        if name not in task.vocab.tokens:
            raise ConfigError(f"task {task.name!r} has no {name} token: a prefix-suffix-middle denoiser needs "
                              "[PRE] [SUF] [MID] and the context separator [SEP]")
        ids[name] = task.vocab.id(name)
    keep = {k: v for k, v in ac.to_dict().items()
            if k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "intermediate_size", "rms_norm_eps", "rope_parameters",
                     "rope_theta", "tie_word_embeddings", "head_dim", "hidden_act", "max_position_embeddings")}
    split = getattr(task, "prefix_tokens", None)
    if not isinstance(split, int):
        raise ConfigError(f"task {task.name!r} has no prefix_tokens: a prefix-suffix-middle denoiser reads a "
                          "context of a prefix window, [SEP], a suffix window")
    cfg = PSMDenoiserConfig(
        context_split=split + 1, prefix_token_id=ids["[PRE]"], suffix_token_id=ids["[SUF]"],
        middle_token_id=ids["[MID]"],
        sep_token_id=ids["[SEP]"], task=task.name, vocab_tokens=list(task.vocab.tokens),
        canvas_length=canvas_length, noise=noise, mask_token_id=task.vocab.mask_id,
        pad_token_id=task.vocab.pad_id, eos_token_id=ac.eos_token_id, shift=True, **keep)
    model = PSMDenoiser(cfg)
    ar = LlamaForCausalLM.from_pretrained(ar_dir, use_safetensors=True)
    missing, unexpected = model.load_state_dict(ar.state_dict(), strict=False)
    if unexpected or [k for k in missing if "rotary" not in k]:
        raise ConfigError(f"model.init_from_ar = {str(ar_dir)!r}: weights do not fit "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


AutoConfig.register(PSMDenoiserConfig.model_type, PSMDenoiserConfig)
