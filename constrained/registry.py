"""Task registry: names to task factories.

Besides the built-in tasks of ``constrained.tasks``, every entry point of the group
``constrained.tasks`` (``NAME = "module:Factory"`` under ``[project.entry-points."constrained.tasks"]``
in a package's pyproject.toml, this one's or another installed package's) is a task, imported only
when it is first built. A name given to :func:`register_task` wins over an entry point.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .errors import ConfigError
from .task import Task

_FACTORIES: dict[str, Callable[..., Task]] = {}


def register_task(name: str, factory: Callable[..., Task]) -> None:
    """Make ``load_task(name, **kwargs)`` build ``factory(**kwargs)``."""
    _FACTORIES[name] = factory


#: the entry-point group that registers tasks
ENTRY_POINT_GROUP = "constrained.tasks"


def _entry_point_factory(ep: EntryPoint) -> Callable[..., Task]:
    """A factory that imports ``ep``'s object on its first call (listing names imports nothing)."""

    def build(**kwargs: Any) -> Task:
        try:
            factory = ep.load()
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"task {ep.name!r}: its entry point {ep.value!r} does not load: {e}") from None
        _FACTORIES[ep.name] = factory
        return factory(**kwargs)

    return build


def _ensure_builtin() -> None:
    importlib.import_module("constrained.tasks")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _FACTORIES.setdefault(ep.name, _entry_point_factory(ep))


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
