"""DiffusionTrainer: transformers.Trainer computing the engine's diffusion loss.

Everything else (optimiser, schedule, checkpoints and resume, logging, DDP / FSDP /
DeepSpeed under ``accelerate launch`` or ``torchrun``) is the Trainer's own.
"""

from __future__ import annotations

from typing import Any

from constrained.engine.noise import NoiseProcess
from transformers import Trainer


class DiffusionTrainer(Trainer):
    def __init__(self, *args: Any, noise: NoiseProcess, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.noise = noise

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = model(
            input_ids=inputs["input_ids"],
            coords=inputs.get("coords"),
            context=inputs.get("context"),
            context_mask=inputs.get("context_mask"),
            **({"domains": inputs["domains"]} if "domains" in inputs else {}),
        )
        logits = out.logits if hasattr(out, "logits") else out
        loss = self.noise.loss(logits, inputs["labels"], inputs["corrupted"], inputs["t"], inputs["fixed"])
        return (loss, out) if return_outputs else loss
