"""The public API: ``solve`` one problem, ``solve_batch`` many."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from constrained.engine.samplers import Sampler

from .devices import check_device
from .errors import ConfigError, InvalidProblem
from .quiet import quiet_loading
from .registry import load_task
from .solver import Result, Solver, SolverConfig
from .task import Task
from .taskinfo import suggest

_SAMPLER_KEYS = {f.name for f in dataclasses.fields(Sampler)}
_CONFIG_KEYS = {f.name for f in dataclasses.fields(SolverConfig)} - {"sampler"}


def make_config(config: SolverConfig | None = None, **options: Any) -> SolverConfig:
    """A SolverConfig from keyword options; sampler options (strategy, threshold, steps,
    temperature) go to its Sampler. ``model_only=True`` switches every mechanism off."""
    model_only = options.pop("model_only", False)
    if "defer_token" in options:  # renamed (issue #20): refused by name rather than silently aliased
        raise ConfigError("solver option 'defer_token' is now called 'end_token' (the token that ends the content, "
                          "e.g. [PAD]); rename it")
    unknown = set(options) - _SAMPLER_KEYS - _CONFIG_KEYS
    if unknown:
        known = sorted(_CONFIG_KEYS | _SAMPLER_KEYS | {"model_only"})
        first = sorted(unknown)[0]
        raise ConfigError(f"unknown solver option(s) {sorted(unknown)}{suggest(first, known)}; known: {known}")
    base = config or (SolverConfig.model_only() if model_only else SolverConfig())
    sampler_kw = {k: options.pop(k) for k in list(options) if k in _SAMPLER_KEYS}
    sampler = dataclasses.replace(base.sampler, **sampler_kw) if sampler_kw else base.sampler
    try:
        return dataclasses.replace(base, sampler=sampler, **options)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def load_denoiser(task: Task, model: str | Path | nn.Module = "default", **kw: Any):
    """:func:`constrained.loading.load_denoiser`, imported on first use (it brings in transformers)."""
    from .loading import load_denoiser as load  # noqa: PLC0415

    return load(task, model, **kw)


def make_solver(task: str | Task, model: str | Path | nn.Module = "default", device: str = "cpu",
                config: SolverConfig | None = None, trust_remote_code: bool = False, **options: Any) -> Solver:
    """A Solver for ``task`` with its model loaded. ``model``: ``"default"`` (the task's shipped
    model), ``"task:NAME"`` (task NAME's shipped model, e.g. Sudoku's for Sudoku-X), a local model
    or adapter folder, a hub id of a masked LM, or a module. Options: those of :func:`make_config`,
    over the task's own ``solver_defaults``."""
    task = load_task(task)
    check_device(device)  # before any model loads
    if config is None:  # a task's own defaults (e.g. sampling temperature for design tasks); options win
        defaults = dict(task.solver_defaults)
        if "end_token" in options and options["end_token"] is None and "length_search" not in options:
            defaults.pop("length_search", None)  # searching lengths needs the end token the caller turned off
        options = {**defaults, **options}
    if isinstance(model, str) and model.startswith("task:"):  # another task's shipped model, as --base takes
        from .shipped import default_model_path  # noqa: PLC0415

        model = default_model_path(load_task(model[5:]))
    with quiet_loading():
        denoiser, noise = load_denoiser(task, model, trust_remote_code=trust_remote_code)
    return Solver(task, denoiser, noise, make_config(config, **options), device=device)


def solve(task: str | Task, problem: Any, model: str | Path | nn.Module = "default", *,
          device: str = "cpu", config: SolverConfig | None = None, **options: Any) -> Result:
    """Solve one problem. Raises InvalidProblem (naming what is wrong) for bad input.

    >>> res = solve("sudoku", "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79")
    >>> res.valid, res.passes  # doctest: +SKIP
    """
    solver = make_solver(task, model, device, config, **options)
    return solve_with(solver, [problem], on_invalid="raise")[0]


def solve_batch(task: str | Task, problems: Sequence[Any], model: str | Path | nn.Module = "default", *,
                device: str = "cpu", batch_size: int = 256, progress: bool = False,
                on_invalid: str = "raise", config: SolverConfig | None = None, **options: Any) -> list[Result]:
    """Solve many problems in batches; results come back in input order.

    on_invalid: ``"raise"`` stops at the first bad problem; ``"result"`` returns an
    unsolved Result whose ``error`` names what is wrong and goes on.
    """
    solver = make_solver(task, model, device, config, **options)
    return solve_with(solver, problems, batch_size=batch_size, progress=progress, on_invalid=on_invalid)


def solve_with(solver: Solver, problems: Sequence[Any], *, batch_size: int = 256, progress: bool = False,
               on_invalid: str = "raise") -> list[Result]:
    """Solve ``problems`` with a ready Solver (the model stays loaded between calls)."""
    if on_invalid not in ("raise", "result"):
        raise ConfigError(f"on_invalid must be 'raise' or 'result', got {on_invalid!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    task = solver.task
    results: list[Result | None] = [None] * len(problems)
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, p in enumerate(problems):
        try:
            key = task.group_key(p)
        except InvalidProblem as e:
            if on_invalid == "raise":
                raise
            results[i] = Result(problem=p, solution=None, valid=False, passes=0, error=str(e))
            continue
        groups[key].append(i)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(problems), desc=f"solving {task.name}", unit="problem")
    for idx in groups.values():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            batch = [problems[i] for i in chunk]
            try:  # encoded once; one at a time only when some problem in it is bad
                pairs = [(chunk, task.encode(batch))]
            except InvalidProblem:
                pairs = _encode_each(task, problems, chunk, results, on_invalid)
            for ok_idx, canvas in pairs:
                for i, r in zip(ok_idx, solver.run(canvas, [problems[i] for i in ok_idx])):
                    results[i] = r
            if bar is not None:
                bar.update(len(chunk))
                solved = sum(1 for r in results if r is not None and r.valid)
                bar.set_postfix(solved=solved)
    if bar is not None:
        bar.close()
    return [r for r in results if r is not None]


def _encode_each(task: Task, problems: Sequence[Any], chunk: list[int], results: list[Result | None],
                 on_invalid: str) -> list[tuple[list[int], Any]]:
    """The good problems of ``chunk`` as one canvas, after finding the bad ones one by one (each gets
    an unsolved Result naming what is wrong, or the first is raised)."""
    ok_idx = []
    for i in chunk:
        try:
            task.encode([problems[i]])
            ok_idx.append(i)
        except InvalidProblem as e:
            if on_invalid == "raise":
                raise
            results[i] = Result(problem=problems[i], solution=None, valid=False, passes=0, error=str(e))
    return [(ok_idx, task.encode([problems[i] for i in ok_idx]))] if ok_idx else []
