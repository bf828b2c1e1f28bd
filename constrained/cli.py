"""The ``constrained`` command.

Start-up is kept light: building the parser, ``--help``, ``constrained tasks [TASK]`` and every
error about the command line itself (an unknown task or option, a file that does not exist)
import neither torch nor transformers. torch comes in when a task is built (to check the
problems), transformers only once the problems are known to be good and the model loads.

The options ``solve``, ``trace`` and ``batch`` share are :mod:`constrained.cli_options`; the
``batch`` command is :mod:`constrained.batch_cli`, ``bench`` :mod:`constrained.bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from constrained.engine.names import NOISES
from constrained.finetune.recipes import MODES

from .batch_cli import add_batch_parser
from .cli_options import (
    add_solver_options,
    checked_task_options,
    configure_threads,
    flags,
    solver_options,
    task_options_epilog,
)
from .errors import ConfigError, ConstrainedError, InvalidProblem
from .taskinfo import suggest

DESCRIPTION = "Solve structured problems with discrete diffusion models and exact validators."

EPILOG = """\
examples:
  constrained tasks
  constrained tasks peptide
  constrained solve sudoku 53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79
  constrained solve sudoku puzzles.txt --json
  constrained trace sudoku PUZZLE --out trace.html

`constrained COMMAND --help` lists a command's options.
"""

COMMANDS = ("tasks", "solve", "trace", "batch", "finetune", "bench")


# --- inputs ------------------------------------------------------------------------------------
_PATHLIKE = re.compile(r"^[\w\-.~/\\]+$")
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,5}$")


def looks_like_path(value: str) -> bool:
    """A one-word argument of path characters with a directory part or a file extension
    (``puzzles.txt``, ``data/spec``): meant as a file, not as the problem itself."""
    if "\n" in value or len(value) > 4096 or not _PATHLIKE.match(value):
        return False
    return "/" in value or "\\" in value or bool(_EXTENSION.search(value))


def input_source(value: str) -> Path | None:
    """INPUT as a file to read, None when it is the problem itself; ConfigError naming a path
    that does not exist (never parsed as an inline problem)."""
    if "\n" in value or len(value) > 4096:
        return None
    path = Path(value).expanduser()
    try:  # a long inline problem is no file name (ENAMETOOLONG), nor is one with a NUL
        if path.is_file():
            return path
        exists = path.exists()
    except (OSError, ValueError):
        return None
    if exists:
        raise ConfigError(f"{value}: is a folder, not a file of problems")
    if looks_like_path(value):
        raise ConfigError(f"{value}: no such file (give an existing file, or the problem itself)")
    return None


def read_inputs(task, value: str) -> list[Any]:
    """INPUT is a file (the task reads it) or the problem itself (the task may expand it, e.g.
    a peptide spec repeated ``--n`` times)."""
    path = input_source(value)
    if path is not None:
        try:
            return task.read_problems(path)
        except UnicodeDecodeError as e:
            raise InvalidProblem(f"{path} is not UTF-8 text: {e}") from None
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    inline = task.inline_problems
    return inline(value) if inline is not None else [value]


def check_problems(task, problems: list[Any], where: str) -> None:
    """InvalidProblem naming the problem (and its number, for a file) before any model loads."""
    for i, p in enumerate(problems):
        try:
            task.encode([p])
        except InvalidProblem as e:
            raise InvalidProblem(f"{where}, problem {i + 1}: {e}" if len(problems) > 1 else str(e)) from None


def precheck_inline(task_name: str, value: str) -> None:
    """A problem typed on the command line, checked by the task's torch-free ``input_check``
    (if it has one) before torch loads."""
    import importlib  # noqa: PLC0415

    from .registry import describe_task  # noqa: PLC0415

    where = describe_task(task_name).input_check
    if where:
        module, _, attr = where.partition(":")
        getattr(importlib.import_module(module), attr)(value)


def _prepare(a: argparse.Namespace):
    """(task, problems) with every input error raised before the model loads."""
    opts = checked_task_options(a)
    source = input_source(a.input)  # a missing file fails here, before torch
    if source is None:
        precheck_inline(a.task, a.input)  # e.g. a Sudoku with 80 cells, before torch
    from .registry import load_task  # noqa: PLC0415

    task = load_task(a.task, **opts)
    problems = read_inputs(task, a.input)
    if not problems:
        raise InvalidProblem(f"{a.input}: holds no problem")
    check_problems(task, problems, str(source) if source is not None else "input")
    configure_threads(a.threads)
    return task, problems


# --- commands ----------------------------------------------------------------------------------
def cmd_tasks(a: argparse.Namespace) -> int:
    from .registry import describe_task, list_tasks  # noqa: PLC0415
    from .taskinfo import format_info, shipped_model  # noqa: PLC0415

    if a.task:
        print(format_info(describe_task(a.task)))
        return 0
    for name in list_tasks():
        info = describe_task(name)
        shipped = shipped_model(info.default_model) is not None
        print(f"{name:16s} {'model shipped' if shipped else 'no model    '}  {info.summary}")
    print("\n`constrained tasks TASK` shows a task's options, input formats and an example.")
    return 0


def status_line(r: Any) -> str:
    """One line on a Result: its verdict, passes (for the complete search: decisions), the time
    the solve took, and the validator's checks that passed and failed."""
    if r.status == "infeasible":
        return f"infeasible, {r.messages[0] if r.messages else 'proved'}; passes: {r.passes}; {r.seconds:.2f} s"
    head = "solved (validator passed)" if r.valid else "NOT solved (validator failed; nothing proved)"
    tail = f"passes: {r.passes}"
    tail += f", decisions: {r.decisions}, backtracks: {r.backtracks}" if r.decisions else f", restarts: {r.restarts}"
    if r.unique is not None:
        tail += ", unique" if r.unique else ", NOT unique (another solution exists)"
    line = f"{head}; {tail}; {r.seconds:.2f} s"
    checks = getattr(r, "checks", None) or []
    passed, failed = [c for c in checks if c.ok], [c for c in checks if not c.ok]
    if passed:
        line += "; checks passed: " + ", ".join(str(c) for c in passed)
    if failed:
        line += "; failed: " + ", ".join(str(c) for c in failed)
    return line


def cmd_solve(a: argparse.Namespace) -> int:
    task, problems = _prepare(a)
    from .api import make_solver, solve_with  # noqa: PLC0415

    solver = make_solver(task, a.model, a.device, trust_remote_code=a.trust_remote_code, **solver_options(a))
    if a.chromatic:  # the fewest colours (graph colouring); --time-limit is its wall-time budget
        run = getattr(task, "cli_chromatic", None)
        if run is None:
            raise ConstrainedError("--chromatic is for graph-coloring only")
        return run(problems, solver, a.time_limit, a.json)
    progress = a.progress if a.progress is not None else (len(problems) > 1 and sys.stderr.isatty())
    results = solve_with(solver, problems, batch_size=a.batch_size, progress=progress, on_invalid="raise")
    for r in results:
        if a.json:
            print(json.dumps(r.to_dict()))
            continue
        if r.solution is not None:  # an infeasible problem has none
            print(task.format_solution(r.solution))
        if a.draw and r.solution is not None:
            draw = task.draw
            if draw is None:
                raise ConfigError(f"task {task.name!r} cannot draw its solutions")
            draw(r, a.draw)
            print(f"drawing written to {a.draw}")
        print(status_line(r))
        if r.unique is False and r.alternative is not None:
            print("another solution:")
            print(task.format_solution(r.alternative))
        if r.status == "unsolved":
            for m in r.messages[:10]:
                print(f"  - {m}")
        print()
    return 0 if all(r.valid for r in results) else 1


def cmd_trace(a: argparse.Namespace) -> int:
    """Solve one problem with a per-pass trace and write the HTML replay."""
    out = Path(a.out)
    if out.is_dir() or (out.exists() and not out.is_file()):
        raise ConfigError(f"--out {out} is a directory or not a regular file; give an .html file path")
    task, problems = _prepare(a)
    if not 0 <= a.item < len(problems):
        raise ConfigError(f"--item {a.item} is out of range: the input holds {len(problems)} problem(s)")
    from .api import make_solver, solve_with  # noqa: PLC0415
    from .trace import render_html  # noqa: PLC0415

    solver = make_solver(task, a.model, a.device, trust_remote_code=a.trust_remote_code, trace=True,
                         **solver_options(a))
    (r,) = solve_with(solver, [problems[a.item]], on_invalid="raise")
    render_html(r, task, a.out)
    print(f"{status_line(r)}; trace written to {a.out}")
    return 0 if r.valid else 1


def cmd_finetune(a: argparse.Namespace) -> int:
    out = Path(a.out or f"runs/{a.task}")
    fresh = not out.exists()
    try:
        return _finetune(a)
    except BaseException:
        if fresh and out.is_dir() and not any(out.iterdir()):  # a failed run leaves no empty folder behind
            out.rmdir()
        raise


def _finetune(a: argparse.Namespace) -> int:
    if a.mode != "lora" and (a.base is not None or a.merge):
        raise ConfigError("--base and --merge belong to --mode lora")
    from .registry import describe_task  # noqa: PLC0415

    describe_task(a.task)  # an unknown task is named before anything heavy loads
    overrides = list(a.set or [])
    if a.steps is not None:
        overrides.append(f"train.max_steps={a.steps}")
    if a.batch_size is not None:
        overrides.append(f"train.batch_size={a.batch_size}")
    if a.lr is not None:
        overrides.append(f"train.learning_rate={a.lr}")
    if a.noise is not None:
        overrides.append(f"train.noise={a.noise}")
    progress = a.progress if a.progress is not None else sys.stderr.isatty()
    if not progress:  # nor transformers' own bars (loading, writing shards)
        from transformers.utils import logging as hf_logging  # noqa: PLC0415

        hf_logging.disable_progress_bar()
    if a.mode == "lora":
        from constrained.finetune.lora import finetune_lora  # noqa: PLC0415

        res = finetune_lora(a.task, out=a.out, recipe_path=a.recipe, overrides=overrides, base=a.base,
                            init=a.init, merge=a.merge, resume=not a.no_resume, progress=progress,
                            trust_remote_code=a.trust_remote_code)
    elif a.mode == "reward":
        from constrained.finetune.reward import finetune_reward  # noqa: PLC0415

        res = finetune_reward(a.task, out=a.out, recipe_path=a.recipe, overrides=overrides, init=a.init,
                              resume=not a.no_resume, progress=progress)
    else:
        from constrained.finetune.full import finetune  # noqa: PLC0415

        res = finetune(a.task, out=a.out, recipe_path=a.recipe, overrides=overrides, init=a.init,
                       resume=not a.no_resume, progress=progress)
    print(json.dumps(res, indent=1))
    return 0


# --- parser ------------------------------------------------------------------------------------
class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="constrained", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=_Formatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    task_help = task_options_epilog()

    s = sub.add_parser("tasks", help="list the tasks, or describe one (options, input formats, an example)",
                       description="List the registered tasks, or describe TASK: its options and their "
                                   "defaults, its input formats, its solver defaults and an example.",
                       formatter_class=_Formatter)
    s.add_argument("task", nargs="?", default=None, help="the task to describe (default: list them all)")
    s.set_defaults(fn=cmd_tasks)

    # allow_abbrev off: an unknown --n is a task option, not an abbreviation of --no-...
    s = sub.add_parser("solve", help="solve a problem (or a file of them); print each answer and its checks",
                       description="Solve INPUT with the task's model under its validator. Exit status: 0 "
                                   "when every problem validated, 1 when some did not, 2 on bad input.",
                       allow_abbrev=False, epilog=task_help, formatter_class=_Formatter)
    s.add_argument("task", help="task name (`constrained tasks` lists them)")
    s.add_argument("input", help="the problem itself, or a file of problems (`constrained tasks TASK` "
                                 "gives the formats)")
    g = s.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="one JSON result per line")
    g.add_argument("--draw", metavar="PNG", default=None, help="write a picture of the solution (graph tasks)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar for a file of problems (default: when stderr is a terminal)")
    g.add_argument("--batch-size", type=int, default=256, metavar="N",
                   help="problems per model batch (default 256)")
    g.add_argument("--chromatic", action="store_true",
                   help="graph-coloring: the fewest colours, reported as [lower, upper] with a colouring "
                        "(--time-limit: its budget per graph, default 60 s)")
    add_solver_options(s)
    s.set_defaults(fn=cmd_solve, task_args=True, known_flags=flags(s))

    s = sub.add_parser("trace", help="solve one problem and write an HTML replay of every pass",
                       description="Solve one problem with a per-pass trace and write a self-contained "
                                   "HTML page replaying it (open it in any browser; no network).",
                       allow_abbrev=False, epilog=task_help, formatter_class=_Formatter)
    s.add_argument("task", help="task name (`constrained tasks` lists them)")
    s.add_argument("input", help="the problem itself, or a file of problems")
    g = s.add_argument_group("output")
    g.add_argument("--out", default="trace.html", help="HTML file to write (default trace.html)")
    g.add_argument("--item", type=int, default=0, help="which problem of a file to trace, from 0 (default 0)")
    add_solver_options(s)
    s.set_defaults(fn=cmd_trace, task_args=True, known_flags=flags(s))

    add_batch_parser(sub, task_help)

    s = sub.add_parser("finetune", help="train a denoiser (or a LoRA adapter) for a task",
                       description="Train a denoiser for TASK from its recipe (finetune/recipes/TASK.toml); "
                                   "checkpoints in --out resume by default.", formatter_class=_Formatter)
    s.add_argument("task", help="task name (`constrained tasks` lists them)")
    s.add_argument("--mode", choices=MODES, default="full",
                   help="full: train a model; lora: a LoRA adapter on --base; reward: validator-reward "
                        "training from --init (default full)")
    s.add_argument("--out", default=None, help="output folder (default runs/TASK)")
    s.add_argument("--recipe", default=None, help="recipe TOML (default finetune/recipes/TASK.toml)")
    s.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a recipe entry")
    s.add_argument("--init", default=None,
                   help="continue from this checkpoint (full, reward: a model; lora: an adapter of --base)")
    s.add_argument("--base", default=None,
                   help="lora: base model: 'default', 'task:NAME' (another task's model), a dir, a hub id")
    s.add_argument("--merge", action="store_true", help="lora: also write the merged model to OUT/merged")
    s.add_argument("--trust-remote-code", action="store_true",
                   help="lora: allow a base that runs its own code (LLaDA, Dream; off by default)")
    s.add_argument("--steps", type=int, default=None, help="training steps (recipe: train.max_steps)")
    s.add_argument("--batch-size", type=int, default=None, help="batch size (recipe: train.batch_size)")
    s.add_argument("--lr", type=float, default=None, help="learning rate (recipe: train.learning_rate)")
    s.add_argument("--noise", choices=NOISES, default=None,
                   help="noise process (recipe: train.noise)")
    s.add_argument("--no-resume", action="store_true", help="ignore checkpoints already in --out")
    s.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="training progress bar (default: when stderr is a terminal)")
    s.set_defaults(fn=cmd_finetune)

    from .bench import add_bench_parser  # noqa: PLC0415

    add_bench_parser(sub)
    return p


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    for act in parser._actions:
        if isinstance(act, argparse._SubParsersAction):
            return act.choices.get(command)
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        print(f"constrained: error: unknown command {argv[0]!r}{suggest(argv[0], list(COMMANDS))}; "
              f"commands: {', '.join(COMMANDS)} (`constrained --help`)", file=sys.stderr)
        return 2
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    try:
        if getattr(args, "task_args", None) is True:
            args.task_args = extra  # task options, e.g. --k 3
        elif extra:
            sp = _subparser(parser, args.command)
            unknown = next((x for x in extra if x.startswith("-")), extra[0])
            close = suggest(unknown.split("=")[0], flags(sp)) if sp is not None else ""
            raise ConfigError(f"unrecognized argument {unknown}{close} (`constrained {args.command} --help`)")
        return args.fn(args)
    except (ConstrainedError, ValueError) as e:
        print(f"constrained: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `constrained tasks | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a file the command had to read or write (the message names it)
        print(f"constrained: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("constrained: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
