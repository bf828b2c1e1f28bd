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
        "domain_input": False,
        # "denoiser": the project's bidirectional encoder (the sizes above); "psm-block": a block-diffusion
        # LM that reads the context as a prefix-suffix-middle prompt (engine/infill.py), started from the
        # Llama AR model at init_from_ar (its sizes; the ones above are then unused)
        "arch": "denoiser",
        "init_from_ar": "",
        # "graph": GraphDenoiser (engine/graph.py), for graph tasks whose canvas carries an adjacency
        # (``peers``) and whose values are interchangeable colours; sized by hidden_size,
        # num_hidden_layers, num_attention_heads and these two
        "value_hidden_size": 32,
        "num_global": 2,
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
        # share of examples whose context is masked too (at the example's level t) and scored:
        # MDLM on the whole window, so every context token teaches the language and not only the
        # canvas's few; mask noise and the project's own denoiser only
        "context_noise": 0.0,
    },
    "eval": {
        "steps": 500,
        "size": 64,
        "options": {},
    },
    "task": {},
    # --mode lora (finetune/lora.py)
    "lora": {
        "base": "default",  # "default" (the task's shipped model), "task:NAME" (another task's), or a path
        "rank": 8,
        "alpha": 16,
        "dropout": 0.0,
        "target_modules": "",  # "" = chosen per architecture (finetune.lora.default_target_modules)
        "modules_to_save": "",  # extra modules trained in full and saved with the adapter
    },
    # --mode reward (finetune/reward.py)
    "reward": {
        "group_size": 8,  # samples per problem; advantages are relative to the group
        "grade": "expert",  # generator options of the problems sampled from
        "pool_size": 256,  # problems generated for training
        "temperature": 1.0,  # sampling temperature of the rollouts
        "max_passes": 32,  # model passes per rollout (model only, no re-noising)
        "solved_bonus": 1.0,  # reward = fraction of constraint groups satisfied + bonus if solved
        "kl_beta": 0.05,  # weight of the KL penalty to the starting model
        "clip_advantage": 3.0,
        "negative_weight": 1.0,  # scale of below-group-mean advantages; 0 learns from the better samples only
    },
}

CHECKED_SECTIONS = ("model", "train", "lora", "reward")
MODES = ("full", "lora", "reward")


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


def recipe_file(task: str, mode: str = "full") -> Path:
    """The recipe a mode reads: ``TASK.MODE.toml`` (lora, reward) if present, else ``TASK.toml``."""
    if mode not in MODES:
        raise ConfigError(f"unknown fine-tuning mode {mode!r}; use one of {MODES}")
    specific = RECIPES_DIR / f"{task}.{mode}.toml"
    return specific if mode != "full" and specific.exists() else RECIPES_DIR / f"{task}.toml"


def load_recipe(task: str, path: str | Path | None = None, overrides: list[str] | None = None,
                mode: str = "full") -> dict[str, Any]:
    """Defaults, then the task's recipe file (or ``path``), then ``overrides`` ("train.max_steps=100")."""
    recipe = copy.deepcopy(DEFAULTS)
    file = Path(path) if path else recipe_file(task, mode)
    if path and not file.exists():
        raise ConfigError(f"recipe file {file} does not exist")
    if file.exists():
        with open(file, "rb") as f:
            data = tomllib.load(f)
        for section, values in data.items():
            if section not in recipe:
                raise ConfigError(f"{file}: unknown section [{section}]; known: {sorted(recipe)}")
            for k, v in values.items():
                if section in CHECKED_SECTIONS and k not in recipe[section]:
                    raise ConfigError(f"{file}: unknown key {section}.{k}; known: {sorted(recipe[section])}")
                recipe[section][k] = v
    for item in overrides or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        if section not in recipe:
            raise ConfigError(f"override {item!r}: unknown section {section!r}")
        if section in (*CHECKED_SECTIONS, "eval") and name not in recipe[section]:
            raise ConfigError(f"override {item!r}: unknown key {key}; known: "
                              f"{sorted(section + '.' + k for k in recipe[section])}")
        like = recipe[section].get(name, "")
        try:
            recipe[section][name] = _coerce(value, like)
        except ValueError:
            raise ConfigError(f"override {item!r}: {value!r} is not a {type(like).__name__}") from None
    if recipe["train"]["noise"] not in ("mask", "uniform"):
        raise ConfigError(f"train.noise must be 'mask' or 'uniform', got {recipe['train']['noise']!r}")
    if recipe["model"]["arch"] not in ("denoiser", "psm-block", "graph"):
        raise ConfigError(f"model.arch must be 'denoiser', 'psm-block' or 'graph', got {recipe['model']['arch']!r}")
    if recipe["model"]["arch"] == "psm-block" and not recipe["model"]["init_from_ar"]:
        raise ConfigError("model.arch = 'psm-block' starts from an AR model: set model.init_from_ar to its folder")
    if recipe["train"]["context_noise"] and recipe["model"]["arch"] != "denoiser":
        raise ConfigError("train.context_noise needs model.arch = 'denoiser' (it scores the context positions)")
    if recipe["train"]["context_noise"] and recipe["train"]["noise"] != "mask":
        raise ConfigError("train.context_noise needs train.noise = 'mask' (a masked context token is "
                          "unambiguous; under uniform noise the context would be corrupted)")
    _check_ranges(recipe)
    return recipe


def _check_ranges(recipe: dict[str, Any]) -> None:
    lo, rw, tr = recipe["lora"], recipe["reward"], recipe["train"]
    for key, value, ok in (
        ("train.max_steps", tr["max_steps"], isinstance(tr["max_steps"], int) and not isinstance(
            tr["max_steps"], bool) and tr["max_steps"] >= 1),
        ("train.batch_size", tr["batch_size"], isinstance(tr["batch_size"], int) and not isinstance(
            tr["batch_size"], bool) and tr["batch_size"] >= 1),
        ("train.learning_rate", tr["learning_rate"], isinstance(tr["learning_rate"], (int, float))
         and 0 < tr["learning_rate"] < float("inf")),
        ("train.context_noise", tr["context_noise"], isinstance(tr["context_noise"], (int, float))
         and 0 <= tr["context_noise"] <= 1),
        ("lora.rank", lo["rank"], isinstance(lo["rank"], int) and lo["rank"] >= 1),
        ("lora.alpha", lo["alpha"], isinstance(lo["alpha"], (int, float)) and lo["alpha"] > 0),
        ("lora.dropout", lo["dropout"], isinstance(lo["dropout"], (int, float)) and 0 <= lo["dropout"] < 1),
        ("reward.group_size", rw["group_size"], isinstance(rw["group_size"], int) and rw["group_size"] >= 2),
        ("reward.pool_size", rw["pool_size"], isinstance(rw["pool_size"], int) and rw["pool_size"] >= 1),
        ("reward.max_passes", rw["max_passes"], isinstance(rw["max_passes"], int) and rw["max_passes"] >= 1),
        ("reward.temperature", rw["temperature"], isinstance(rw["temperature"], (int, float))
         and rw["temperature"] > 0),
        ("reward.kl_beta", rw["kl_beta"], isinstance(rw["kl_beta"], (int, float)) and rw["kl_beta"] >= 0),
        ("reward.clip_advantage", rw["clip_advantage"], isinstance(rw["clip_advantage"], (int, float))
         and rw["clip_advantage"] > 0),
        ("reward.negative_weight", rw["negative_weight"], isinstance(rw["negative_weight"], (int, float))
         and 0 <= rw["negative_weight"] <= 1),
    ):
        if not ok:
            raise ConfigError(f"{key} = {value!r} is out of range")


def name_list(value: str | list[str]) -> list[str]:
    """A recipe's list of names: a TOML list or a comma-separated string (from ``--set``)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]
