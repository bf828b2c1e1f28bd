"""Training: DiffusionTrainer on transformers.Trainer, recipes per task, LoRA via peft."""

from .data import DiffusionCollator, TaskStream
from .recipes import load_recipe
from .trainer import DiffusionTrainer

__all__ = ["DiffusionCollator", "DiffusionTrainer", "TaskStream", "load_recipe"]
