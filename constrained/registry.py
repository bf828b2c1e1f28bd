"""Task registry: names to task factories.

Built-in tasks are registered by where they live (``"constrained.tasks.sudoku:Sudoku"``) and
imported only when a task is built, so listing, describing and checking options
(:func:`list_tasks`, :func:`describe_task`, :func:`check_task_options`) import no torch.

Every entry point of the group ``constrained.tasks`` (``NAME = "module:Factory"`` under
``[project.entry-points."constrained.tasks"]`` in a package's pyproject.toml, this one's or another
installed package's) is a task too, registered the same way (read once, on first use of the
registry). A name given to :func:`register_task` or built in wins over an entry point.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .taskinfo import TaskInfo, describe_object, describe_source, suggest

if TYPE_CHECKING:
    from .task import Task

#: the built-in tasks: name -> "module:Class"
BUILTIN = {
    "sudoku": "constrained.tasks.sudoku:Sudoku",
    "sudoku-x": "constrained.tasks.sudoku:SudokuX",
    "peptide": "constrained.tasks.peptide:Peptide",
    "code-infill": "constrained.tasks.code:CodeInfill",
    "code-edit": "constrained.tasks.code:CodeEdit",
    "graph-coloring": "constrained.tasks.graphs.coloring:GraphColoring",
    "graph-gen": "constrained.tasks.graphs.generation:GraphGeneration",
}

_FACTORIES: dict[str, Callable[..., Task] | str] = dict(BUILTIN)


def register_task(name: str, factory: Callable[..., Task] | str) -> None:
    """Make ``load_task(name, **kwargs)`` build ``factory(**kwargs)``; ``factory`` may also be
    ``"module:attribute"``, imported on first use."""
    _FACTORIES[name] = factory


#: the entry-point group that registers tasks
ENTRY_POINT_GROUP = "constrained.tasks"
_ENTRY_POINTS: set[str] = set()  # names registered by an entry point
_entry_points_read = False


def _read_entry_points() -> None:
    """Register each entry point of ``ENTRY_POINT_GROUP`` by its ``"module:attribute"`` (once;
    reading package metadata imports nothing)."""
    global _entry_points_read
    if _entry_points_read:
        return
    _entry_points_read = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _FACTORIES:
            _FACTORIES[ep.name] = ep.value
            _ENTRY_POINTS.add(ep.name)


def list_tasks() -> list[str]:
    _read_entry_points()
    return sorted(_FACTORIES)


def _unknown(task: str) -> ConfigError:
    _read_entry_points()
    return ConfigError(f"unknown task {task!r}{suggest(task, list(_FACTORIES))}; "
                       f"known tasks: {', '.join(sorted(_FACTORIES))}")


def _registered(task: str) -> Callable[..., Task] | str:
    """What ``task`` is registered as: its factory, or a "module:attr" string not yet imported."""
    _read_entry_points()
    if task not in _FACTORIES:
        raise _unknown(task)
    return _FACTORIES[task]


def task_factory(task: str) -> Callable[..., Task]:
    """The callable that builds ``task`` (imports its module)."""
    f = _registered(task)
    if isinstance(f, str):
        module, _, attr = f.partition(":")
        try:
            f = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            if task not in _ENTRY_POINTS:
                raise
            # another package's entry point: its failure to load is the user's to fix, not a bug here
            raise ConfigError(f"task {task!r}: its entry point {_FACTORIES[task]!r} does not load: {e}") from None
        _FACTORIES[task] = f
    return f


def describe_task(task: str) -> TaskInfo:
    """Options, defaults, input formats and an example of a registered task (see
    :mod:`constrained.taskinfo`); built-in tasks are read from source, not imported."""
    f = _registered(task)
    if isinstance(f, str):
        module, _, attr = f.partition(":")
        info = describe_source(task, module, attr)
        if info is not None:
            return info
        f = task_factory(task)
    return describe_object(task, f)


def check_task_options(task: str, options: Mapping[str, Any], also: list[str] | None = None) -> None:
    """ConfigError naming each option ``task`` does not take, with the closest valid name
    (among the task's options and ``also``, e.g. the CLI's solver flags)."""
    info = describe_task(task)
    if info.accepts_any:
        return
    known = info.option_names()
    for name in options:
        if name not in known:
            close = suggest(name, known + list(also or []))
            listed = ", ".join(known) if known else "none"
            raise ConfigError(f"task {task!r} has no option {name!r}{close}; "
                              f"its options: {listed} (see `constrained tasks {task}`)")


def load_task(task: str | Task, **kwargs: Any) -> Task:
    """A task by name (``"sudoku"``, ...) or the task itself."""
    if not isinstance(task, str):
        from .task import Task  # noqa: PLC0415 (torch only when a task object is given)

        if not isinstance(task, Task):
            raise ConfigError(f"a task is a name or a Task, got {type(task).__name__}")
        if kwargs:
            raise ConfigError(f"task options {sorted(kwargs)} given with a task object; set them on the task")
        return task
    check_task_options(task, kwargs)
    factory = task_factory(task)
    try:
        return factory(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad options for task {task!r}: {e}") from None
