"""Recipes: per-task training options in TOML (``finetune/recipes/TASK.toml``, or
``TASK.MODE.toml`` for the lora and reward modes), overridable on the command line with
``--set section.key=value``.

A recipe is typed: one dataclass per section, where each setting's default and its allowed
range are written once, side by side (:func:`setting`), and checked in the section's
``__post_init__``; checks that join two sections sit in :class:`Recipe`'s. Unknown sections and
keys, values of the wrong type and values out of range all raise ``ConfigError`` before
anything loads. A recipe reads like its TOML: ``recipe.train.seed`` or ``recipe["train"]["seed"]``.
"""

from __future__ import annotations

import math
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from constrained.engine.names import NOISES

from constrained.errors import ConfigError

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
MODES = ("full", "lora", "reward")
ARCHS = ("denoiser", "psm-block", "graph")


def setting(default: Any, check: Callable[[Any], bool] | None = None, *, factory: Callable[[], Any] | None = None):
    """A recipe setting: its default and the range check its section applies (``check(value)``
    true when allowed; the message is ``SECTION.KEY = VALUE is out of range``)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"check": check})
    return field(default=default, metadata={"check": check})


def at_least(lo: float) -> Callable[[Any], bool]:
    return lambda v: v >= lo


def positive(v: float) -> bool:
    return 0 < v < math.inf


def unit(v: float) -> bool:
    return 0 <= v <= 1


def name_list(value: str | list[str]) -> list[str]:
    """A recipe's list of names: a TOML list or a comma-separated string (from ``--set``)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _coerce(value: str, kind: type) -> Any:
    """A ``--set`` value (text) as the type of the setting it replaces."""
    if kind is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if kind in (int, float):
        return kind(value)
    if kind is list:
        return name_list(value)
    if kind is dict:
        raise ValueError(value)
    return value


#: how errors name each setting type
TYPE_NAMES = {int: "an integer", float: "a number", bool: "a boolean (true or false)", str: "a string",
              list: "a list of names", dict: "a table (set it in the recipe file)"}


def _kind(hint: Any) -> type:
    return typing.get_origin(hint) or hint


class Section:
    """A recipe section: a dataclass whose fields are its keys. Subclasses set ``name``."""

    name: ClassVar[str]

    @classmethod
    def kinds(cls) -> dict[str, type]:
        """Key -> its type (int, float, bool, str, list, dict), in the TOML table's order."""
        hints = typing.get_type_hints(cls)
        return {f.name: _kind(hints[f.name]) for f in fields(cls)}

    def __post_init__(self) -> None:
        kinds = self.kinds()
        for f in fields(self):
            kind, value = kinds[f.name], getattr(self, f.name)
            if kind is list and isinstance(value, (str, list)):
                value = name_list(value)
            elif kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
            if not ok:
                raise ConfigError(f"{self.name}.{f.name} = {value!r} is not {TYPE_NAMES[kind]}")
            setattr(self, f.name, value)
            check = f.metadata.get("check")
            if check is not None and not check(value):
                raise ConfigError(f"{self.name}.{f.name} = {value!r} is out of range")

    def keys(self) -> list[str]:
        return [f.name for f in fields(self)]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: str) -> bool:
        return key in self.keys()


@dataclass
class ModelSettings(Section):
    """``[model]``: which denoiser ``--mode full`` builds, and its sizes."""

    name: ClassVar[str] = "model"
    hidden_size: int = setting(128, at_least(1))
    num_hidden_layers: int = setting(4, at_least(1))
    num_attention_heads: int = setting(4, at_least(1))
    intermediate_size: int = setting(512, at_least(1))
    dropout: float = setting(0.0, lambda v: 0 <= v < 1)
    max_position_embeddings: int = setting(512, at_least(1))
    domain_input: bool = setting(False)
    # "denoiser": the project's bidirectional encoder (the sizes above); "psm-block": a block-diffusion
    # LM that reads the context as a prefix-suffix-middle prompt (engine/infill.py), started from the
    # Llama AR model at init_from_ar (its sizes; the ones above are then unused)
    arch: str = setting("denoiser")
    init_from_ar: str = setting("")
    # "graph": GraphDenoiser (engine/graph.py), for graph tasks whose canvas carries an adjacency
    # (``peers``) and whose values are interchangeable colours; sized by hidden_size,
    # num_hidden_layers, num_attention_heads and these two
    value_hidden_size: int = setting(32, at_least(1))
    num_global: int = setting(2, at_least(0))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arch not in ARCHS:
            raise ConfigError(f"model.arch must be 'denoiser', 'psm-block' or 'graph', got {self.arch!r}")
        if self.arch == "psm-block" and not self.init_from_ar:
            raise ConfigError("model.arch = 'psm-block' starts from an AR model: set model.init_from_ar to its folder")


@dataclass
class TrainSettings(Section):
    """``[train]``: the Trainer's options (steps, batch, optimiser, schedule, logging, saving)."""

    name: ClassVar[str] = "train"
    noise: str = setting("mask")
    max_steps: int = setting(2000, at_least(1))
    batch_size: int = setting(64, at_least(1))
    learning_rate: float = setting(1e-3, positive)
    warmup_steps: int = setting(100, at_least(0))
    weight_decay: float = setting(0.01, at_least(0))
    lr_scheduler: str = setting("cosine")
    seed: int = setting(0)
    logging_steps: int = setting(50, at_least(1))
    save_steps: int = setting(500, at_least(1))
    save_total_limit: int = setting(2, at_least(1))
    max_grad_norm: float = setting(1.0, at_least(0))
    # share of examples whose context is masked too (at the example's level t) and scored:
    # MDLM on the whole window, so every context token teaches the language and not only the
    # canvas's few; mask noise and the project's own denoiser only
    context_noise: float = setting(0.0, unit)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.noise not in NOISES:
            raise ConfigError(f"train.noise must be 'mask' or 'uniform', got {self.noise!r}")


@dataclass
class EvalSettings(Section):
    """``[eval]``: the held-out set (``size`` problems), solved every ``steps`` steps (0: at the
    end only) with solver ``options``; any other key is a generator option of the held-out set
    (``grade = "hard"``), kept in ``generator``."""

    name: ClassVar[str] = "eval"
    steps: int = setting(500, at_least(0))
    size: int = setting(64, at_least(0))
    options: dict = setting(None, factory=dict)
    generator: dict = setting(None, factory=dict)


@dataclass
class LoraSettings(Section):
    """``[lora]`` (``--mode lora``, finetune/lora.py)."""

    name: ClassVar[str] = "lora"
    base: str = setting("default")  # "default" (the task's shipped model), "task:NAME" (another task's), or a path
    rank: int = setting(8, at_least(1))
    alpha: float = setting(16.0, positive)
    dropout: float = setting(0.0, lambda v: 0 <= v < 1)
    # empty: chosen per architecture (finetune.lora.default_target_modules)
    target_modules: list[str] = setting(None, factory=list)
    modules_to_save: list[str] = setting(None, factory=list)  # extra modules trained in full and saved with the adapter


@dataclass
class RewardSettings(Section):
    """``[reward]`` (``--mode reward``, finetune/reward.py)."""

    name: ClassVar[str] = "reward"
    group_size: int = setting(8, at_least(2))  # samples per problem; advantages are relative to the group
    grade: str = setting("expert")  # generator options of the problems sampled from
    pool_size: int = setting(256, at_least(1))  # problems generated for training
    temperature: float = setting(1.0, positive)  # sampling temperature of the rollouts
    max_passes: int = setting(32, at_least(1))  # model passes per rollout (model only, no re-noising)
    solved_bonus: float = setting(1.0)  # reward = fraction of constraint groups satisfied + bonus if solved
    kl_beta: float = setting(0.05, at_least(0))  # weight of the KL penalty to the starting model
    clip_advantage: float = setting(3.0, positive)
    negative_weight: float = setting(1.0, unit)  # scale of below-group-mean advantages; 0: the better samples only


SECTIONS: dict[str, type[Section]] = {s.name: s for s in (ModelSettings, TrainSettings, EvalSettings,
                                                            LoraSettings, RewardSettings)}


@dataclass
class Recipe:
    """A whole recipe; ``task`` holds the task's own options (``load_task(name, **recipe.task)``)."""

    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    reward: RewardSettings = field(default_factory=RewardSettings)
    task: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.train.context_noise and self.model.arch != "denoiser":
            raise ConfigError("train.context_noise needs model.arch = 'denoiser' (it scores the context positions)")
        if self.train.context_noise and self.train.noise != "mask":
            raise ConfigError("train.context_noise needs train.noise = 'mask' (a masked context token is "
                              "unambiguous; under uniform noise the context would be corrupted)")

    def __getitem__(self, section: str) -> Any:
        return getattr(self, section)


def recipe_file(task: str, mode: str = "full") -> Path:
    """The recipe a mode reads: ``TASK.MODE.toml`` (lora, reward) if present, else ``TASK.toml``."""
    if mode not in MODES:
        raise ConfigError(f"unknown fine-tuning mode {mode!r}; use one of {MODES}")
    specific = RECIPES_DIR / f"{task}.{mode}.toml"
    return specific if mode != "full" and specific.exists() else RECIPES_DIR / f"{task}.toml"


def load_recipe(task: str, path: str | Path | None = None, overrides: list[str] | None = None,
                mode: str = "full") -> Recipe:
    """The section defaults, then the task's recipe file (or ``path``), then ``overrides``
    (``"train.max_steps=100"``). Raises ConfigError for a missing file, an unknown section or
    key, a value that is not of its setting's type, or one out of range."""
    raw: dict[str, dict[str, Any]] = {name: {} for name in (*SECTIONS, "task")}
    file = Path(path) if path else recipe_file(task, mode)
    if path and not file.exists():
        raise ConfigError(f"recipe file {file} does not exist")
    if file.exists():
        with open(file, "rb") as f:
            data = tomllib.load(f)
        for section, values in data.items():
            if section not in raw:
                raise ConfigError(f"{file}: unknown section [{section}]; known: {sorted(raw)}")
            for k, v in values.items():
                if section in SECTIONS and section != "eval" and k not in SECTIONS[section].kinds():
                    raise ConfigError(f"{file}: unknown key {section}.{k}; known: "
                                      f"{sorted(SECTIONS[section].kinds())}")
                raw[section][k] = v
    for item in overrides or []:
        _override(raw, item)
    ev = raw["eval"]
    own = EvalSettings.kinds()
    ev = {**{k: v for k, v in ev.items() if k in own}, "generator": {k: v for k, v in ev.items() if k not in own}}
    return Recipe(**{name: cls(**(ev if name == "eval" else raw[name])) for name, cls in SECTIONS.items()},
                  task=raw["task"])


def _override(raw: dict[str, dict[str, Any]], item: str) -> None:
    """Apply one ``section.key=value`` to the raw sections, as the type of the setting it sets
    (a task option or generator option: as the type of the value it replaces, else text)."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, value = item.split("=", 1)
    section, name = key.split(".", 1)
    if section not in raw:
        raise ConfigError(f"override {item!r}: unknown section {section!r}")
    known = {**SECTIONS[section].kinds(), **raw[section]} if section in SECTIONS else raw[section]
    if section == "eval":
        known.pop("generator")
    if section in SECTIONS and name not in known:
        raise ConfigError(f"override {item!r}: unknown key {key}; known: "
                          f"{sorted(section + '.' + k for k in known)}")
    typed = SECTIONS[section].kinds() if section in SECTIONS else {}
    kind = typed.get(name) or type(raw[section].get(name, ""))
    try:
        raw[section][name] = _coerce(value, kind)
    except ValueError:
        raise ConfigError(f"override {item!r}: {value!r} is not {TYPE_NAMES.get(kind, kind.__name__)}") from None
