"""Task registry: names to task factories."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .errors import ConfigError
from .task import Task

_FACTORIES: dict[str, Callable[..., Task]] = {}


def register_task(name: str, factory: Callable[..., Task]) -> None:
    """Make ``load_task(name, **kwargs)`` build ``factory(**kwargs)``."""
    _FACTORIES[name] = factory


def _ensure_builtin() -> None:
    importlib.import_module("constrained.tasks")


def list_tasks() -> list[str]:
    _ensure_builtin()
    return sorted(_FACTORIES)


def load_task(task: str | Task, **kwargs: Any) -> Task:
    """A task by name (``"sudoku"``, ...) or the task itself."""
    if isinstance(task, Task):
        if kwargs:
            raise ConfigError(f"task options {sorted(kwargs)} given with a task object; set them on the task")
        return task
    _ensure_builtin()
    if task not in _FACTORIES:
        raise ConfigError(f"unknown task {task!r}; known tasks: {', '.join(sorted(_FACTORIES))}")
    try:
        return _FACTORIES[task](**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad options for task {task!r}: {e}") from None
