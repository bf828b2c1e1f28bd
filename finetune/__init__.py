"""Training (``constrained finetune``): one loop for the full, LoRA and reward modes
(``skeleton.py``), each mode's own steps (``full.py``, ``lora.py``, ``reward.py``), the
diffusion loss on ``transformers.Trainer`` (``diffusion_trainer.py``), typed recipes
(``recipes.py``), the example stream and its collator (``data.py``), scoring
(``evaluation.py``) and model cards (``cards.py``).

Names are imported on first use (PEP 562), so the command line can read the recipes' names
(``constrained.finetune.recipes.MODES``) without importing transformers."""

from __future__ import annotations

from constrained.lazy import lazy_exports

_WHERE = {
    "DiffusionCollator": ".data",
    "TaskStream": ".data",
    "DiffusionTrainer": ".diffusion_trainer",
    "Recipe": ".recipes",
    "load_recipe": ".recipes",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
