"""Training (``constrained finetune``): one loop for the full, LoRA and reward modes
(``skeleton.py``), each mode's own steps (``full.py``, ``lora.py``, ``reward.py``), the
diffusion loss on ``transformers.Trainer`` (``diffusion_trainer.py``), typed recipes
(``recipes.py``), the example stream and its collator (``data.py``), scoring
(``evaluation.py``) and model cards (``cards.py``)."""

from .data import DiffusionCollator, TaskStream
from .diffusion_trainer import DiffusionTrainer
from .recipes import Recipe, load_recipe

__all__ = ["DiffusionCollator", "DiffusionTrainer", "Recipe", "TaskStream", "load_recipe"]
