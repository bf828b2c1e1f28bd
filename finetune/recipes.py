"""Recipes: per-task training options in TOML (finetune/recipes/TASK.toml), overridable
on the command line with ``--set section.key=value``. Unknown keys fail before training."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from constrained.errors import ConfigError

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"

DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 512,
        "dropout": 0.0,
        "max_position_embeddings": 512,
    },
    "train": {
        "noise": "mask",
        "max_steps": 2000,
        "batch_size": 64,
        "learning_rate": 1e-3,
        "warmup_steps": 100,
        "weight_decay": 0.01,
        "lr_scheduler": "cosine",
        "seed": 0,
        "logging_steps": 50,
        "save_steps": 500,
        "save_total_limit": 2,
        "max_grad_norm": 1.0,
    },
    "eval": {
        "steps": 500,
        "size": 64,
        "options": {},
    },
    "task": {},
}


def _coerce(value: str, like: Any) -> Any:
    if isinstance(like, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"expected a boolean, got {value!r}")
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    return value


def load_recipe(task: str, path: str | Path | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Defaults, then the task's recipe file (or ``path``), then ``overrides`` ("train.max_steps=100")."""
    recipe = copy.deepcopy(DEFAULTS)
    file = Path(path) if path else RECIPES_DIR / f"{task}.toml"
    if path and not file.exists():
        raise ConfigError(f"recipe file {file} does not exist")
    if file.exists():
        with open(file, "rb") as f:
            data = tomllib.load(f)
        for section, values in data.items():
            if section not in recipe:
                raise ConfigError(f"{file}: unknown section [{section}]; known: {sorted(recipe)}")
            for k, v in values.items():
                if section in ("model", "train") and k not in recipe[section]:
                    raise ConfigError(f"{file}: unknown key {section}.{k}; known: {sorted(recipe[section])}")
                recipe[section][k] = v
    for item in overrides or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        if section not in recipe:
            raise ConfigError(f"override {item!r}: unknown section {section!r}")
        if section in ("model", "train", "eval") and name not in recipe[section]:
            raise ConfigError(f"override {item!r}: unknown key {key}; known: "
                              f"{sorted(section + '.' + k for k in recipe[section])}")
        like = recipe[section].get(name, "")
        try:
            recipe[section][name] = _coerce(value, like)
        except ValueError:
            raise ConfigError(f"override {item!r}: {value!r} is not a {type(like).__name__}") from None
    if recipe["train"]["noise"] not in ("mask", "uniform"):
        raise ConfigError(f"train.noise must be 'mask' or 'uniform', got {recipe['train']['noise']!r}")
    return recipe
