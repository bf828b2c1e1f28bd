"""DiffusionTrainer: the ``transformers.Trainer`` of the full and LoRA modes, computing the
engine's diffusion loss (the reward mode's Trainer is ``reward.RewardTrainer``).

Everything else (optimiser, schedule, checkpoints and resume, logging, DDP / FSDP /
DeepSpeed under ``accelerate launch`` or ``torchrun``) is the Trainer's own.
"""

from __future__ import annotations

from typing import Any

import torch
from constrained.engine.noise import NoiseProcess
from transformers import Trainer

from constrained.errors import ConfigError


class DiffusionTrainer(Trainer):
    """The diffusion loss (``noise.loss``) on the collator's batches (``data.DiffusionCollator``):
    scored at the corrupted positions of the canvas, and of the context under ``context_noise``."""

    def __init__(self, *args: Any, noise: NoiseProcess, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.noise = noise

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        noised_context = "context_corrupted" in inputs
        extra = {"domains": inputs["domains"]} if "domains" in inputs else {}
        if "peers" in inputs:  # a graph's adjacency, for graph denoisers (engine/graph.py)
            extra["peers"] = inputs["peers"]
        if noised_context:
            extra["context_logits"] = True
        out = model(
            input_ids=inputs["input_ids"],
            coords=inputs.get("coords"),
            context=inputs.get("context"),
            context_mask=inputs.get("context_mask"),
            **extra,
        )
        logits = out.logits if hasattr(out, "logits") else out
        labels, corrupted, fixed = inputs["labels"], inputs["corrupted"], inputs["fixed"]
        if noised_context:
            # the canvas and the scored context positions form one sequence under the same bound
            L, C = labels.shape[1], inputs["context_labels"].shape[1]
            if logits.shape[1] != L + C:
                raise ConfigError(
                    f"train.context_noise needs a model that scores its context positions (the project's "
                    f"DenoiserModel); this {type(model).__name__} returned {logits.shape[1]} positions for "
                    f"{L} canvas + {C} context")
            labels = torch.cat([labels, inputs["context_labels"]], dim=1)
            corrupted = torch.cat([corrupted, inputs["context_corrupted"]], dim=1)
            fixed = torch.cat([fixed, ~inputs["context_scored"]], dim=1)
        loss = self.noise.loss(logits, labels, corrupted, inputs["t"], fixed)
        if noised_context and return_outputs:
            logits = logits[:, : inputs["labels"].shape[1]]
            out = type(out)(logits=logits) if hasattr(out, "logits") else logits
        return (loss, out) if return_outputs else loss
