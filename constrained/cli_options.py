"""The options the ``constrained`` commands share (``solve``, ``trace``, ``batch``): the model,
device and solver options, and the task options given after the input.

A module of its own so that :mod:`constrained.cli` and :mod:`constrained.batch_cli` both import
it and neither imports the other. Torch-free, like building the parser: the ``--strategy``,
``--search`` and ``--order`` choices are read from the torch-free name modules
(``engine/names.py``, ``constrained/solver_names.py``), never listed here."""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import Any

from constrained.engine.names import STRATEGIES

from .errors import ConfigError, ConstrainedError
from .solver_names import ORDERS, SEARCHES
from .taskinfo import suggest


# --- options shared by solve, trace and batch ------------------------------------------------
def add_solver_options(p: argparse.ArgumentParser) -> None:
    """The model, device, solver, mechanism and search options of solve, trace and batch."""
    g = p.add_argument_group("model and device")
    g.add_argument("--model", default="default",
                   help="'default' (the task's shipped model), 'task:NAME' (task NAME's shipped model), a local "
                        "model or adapter folder, or a hub id of a masked LM")
    g.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, mps")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default: OMP_NUM_THREADS when set, else 1; more threads than "
                        "free cores make every pass slower on a busy machine)")
    g.add_argument("--trust-remote-code", action="store_true",
                   help="allow a hub model's own Python code to run (off by default)")
    g = p.add_argument_group("solver (defaults: the task's own, see `constrained tasks TASK`)")
    g.add_argument("--max-passes", type=int, default=None, metavar="N", help="model passes per problem at most")
    g.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="commit rule: by confidence threshold, by top-k on a schedule, by top-2 margin, or "
                        "entropy-bound (DiffusionGemma's sampler)")
    g.add_argument("--threshold", type=float, default=None, metavar="P",
                   help="threshold rule: commit tokens whose probability reaches P (at least one per pass)")
    g.add_argument("--steps", type=int, default=None, metavar="N", help="top-k rule: passes of the schedule")
    g.add_argument("--temperature", type=float, default=None, metavar="T", help="sampling temperature")
    g.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    g = p.add_argument_group("solver mechanisms (switch off to measure them)")
    g.add_argument("--model-only", action="store_true",
                   help="turn every mechanism off: the bare model")
    g.add_argument("--no-domains", action="store_true", help="no per-position domain masks on the logits")
    g.add_argument("--no-validator", action="store_true", help="no re-noising of what the validator implicates")
    g.add_argument("--no-tabu", action="store_true", help="do not bar values that failed at a position")
    g.add_argument("--no-restarts", action="store_true", help="no restart of an item that stops improving")
    g.add_argument("--backjump", action=argparse.BooleanOptionalAction, default=None,
                   help="undo the latest pass holding an implicated token and all after it (default: the task's)")
    g.add_argument("--confidence-renoise", type=float, default=None, metavar="P",
                   help="also re-noise committed tokens whose probability falls below P (off by default)")
    g = p.add_argument_group("search (see README, *Certified answers*)")
    g.add_argument("--search", choices=SEARCHES, default=None,
                   help="complete: exhaustive search that proves 'infeasible' (finite-domain tasks); local: "
                        "validator re-noising with tabu and restarts; auto (default): complete where the task allows")
    g.add_argument("--order", choices=ORDERS, default=None,
                   help="complete search: rank choices by the model (default) or in a fixed, model-free order")
    g.add_argument("--check-unique", action="store_true",
                   help="complete search: go on past the first solution and report whether it is unique")
    g.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="wall-time budget for one batch (default: passes alone bound it)")


def solver_options(a: argparse.Namespace) -> dict[str, Any]:
    """The solver options given on the command line, as ``make_solver`` keywords (unset ones left out)."""
    opts: dict[str, Any] = {}
    for key in ("max_passes", "strategy", "threshold", "steps", "temperature", "confidence_renoise", "seed",
                "search", "order", "time_limit"):
        v = getattr(a, key)
        if v is not None:
            opts[key] = v
    if a.model_only:
        opts["model_only"] = True
    if a.no_domains:
        opts["domains"] = False
    if a.no_validator:
        opts["validator_renoise"] = False
    if a.no_tabu:
        opts["tabu"] = 0
    if a.no_restarts:
        opts["restarts"] = False
    if a.backjump is not None:
        opts["backjump"] = a.backjump
    if a.check_unique:
        opts["check_unique"] = True
    return opts


def configure_threads(threads: int | None) -> None:
    """torch's CPU threads: ``--threads`` when given; else OMP_NUM_THREADS when the user set it
    (torch reads it itself); else 1. With torch's default (one per core) a pass on a busy
    machine waits for every core; see BENCHMARKS.md, *Start-up*."""
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        return
    import torch  # noqa: PLC0415

    torch.set_num_threads(threads or 1)


# --- task options ------------------------------------------------------------------------------
def guess_value(value: str) -> Any:
    """A task option given as text: an int, a float, true/false, or the text itself."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def task_options(extra: list[str]) -> dict[str, Any]:
    """Unrecognised ``--name value`` (or ``--flag``) pairs become the task's options:
    ``constrained solve graph-coloring g.json --k 3`` calls ``load_task("graph-coloring", k=3)``."""
    opts: dict[str, Any] = {}
    i = 0
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"unexpected argument {arg!r}")
        name = arg[2:].replace("-", "_")
        if "=" in name:
            name, value = name.split("=", 1)
            opts[name] = guess_value(value)
            i += 1
        elif i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            opts[name] = guess_value(extra[i + 1])
            i += 2
        else:
            opts[name] = True
            i += 1
    return opts


def checked_task_options(a: argparse.Namespace) -> dict[str, Any]:
    """The task options of the command line, each checked against the task's ``__init__`` (read
    from source: no torch); an unknown one names the closest option of the task or the command."""
    from .registry import describe_task  # noqa: PLC0415

    opts = task_options(a.task_args or [])
    info = describe_task(a.task)
    if info.accepts_any:
        return opts
    known = info.option_names()
    for name in opts:
        if name not in known:
            flag = "--" + name.replace("_", "-")
            close = suggest(flag, [o.flag for o in info.options] + list(a.known_flags))
            theirs = (f"task {a.task!r} takes {', '.join(o.flag for o in info.options)}" if known
                      else f"task {a.task!r} takes no task options")
            raise ConfigError(f"unknown option {flag}{close}; {theirs} (`constrained tasks {a.task}`), "
                              f"solver options: `constrained {a.command} --help`")
    return opts


def task_options_epilog() -> str:
    """solve/trace/batch --help: every task's own options, read from the tasks' code."""
    from .registry import describe_task, list_tasks  # noqa: PLC0415

    lines = ["task options (after the input; `constrained tasks TASK` gives their meaning and defaults):"]
    for name in list_tasks():
        try:
            flags = [o.flag for o in describe_task(name).options]
        except (ConstrainedError, OSError, SyntaxError):
            flags = ["(see `constrained tasks " + name + "`)"]
        lines.append(textwrap.fill(", ".join(flags) if flags else "(none)", 96, initial_indent=f"  {name:15s} ",
                                   subsequent_indent=" " * 18, break_on_hyphens=False))
    return "\n".join(lines)




def flags(p: argparse.ArgumentParser) -> list[str]:
    """The ``--long`` options of a parser, sorted (a task option may not reuse one)."""
    return sorted({s for act in p._actions for s in act.option_strings if s.startswith("--")})
