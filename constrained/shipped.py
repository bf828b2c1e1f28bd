"""The models shipped inside the package (``constrained/models/NAME``), found by task."""

from __future__ import annotations

from pathlib import Path

from .errors import ModelMismatch
from .task import Task

MODELS_DIR = Path(__file__).resolve().parent / "models"


def default_model_path(task: Task) -> Path:
    if not task.default_model:
        raise ModelMismatch(f"task {task.name!r} ships no default model; pass model=PATH "
                            f"(--model DIR on the command line; train one with `constrained finetune {task.name}`)")
    path = MODELS_DIR / task.default_model
    if not any((path / f).exists() for f in ("config.json", "adapter_config.json")):  # model or adapter
        raise ModelMismatch(f"the default model for {task.name!r} is missing at {path}; "
                            f"train it with `constrained finetune {task.name} --out {path}`")
    return path
