"""The ``constrained`` command: tasks, solve, trace, finetune."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import ConstrainedError


def _add_solver_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("solver")
    g.add_argument("--model", default="default", help="'default' (shipped), a local model dir, or a hub id")
    g.add_argument("--device", default="cpu")
    g.add_argument("--max-passes", type=int, default=None)
    g.add_argument("--strategy", choices=["threshold", "topk", "margin"], default=None, help="commit rule")
    g.add_argument("--threshold", type=float, default=None, help="confidence to commit a token")
    g.add_argument("--steps", type=int, default=None, help="passes of the top-k schedule")
    g.add_argument("--temperature", type=float, default=None)
    g.add_argument("--model-only", action="store_true", help="turn every mechanism off: the bare model")
    g.add_argument("--no-domains", action="store_true", help="no per-position domain masks")
    g.add_argument("--no-validator", action="store_true", help="no validator-driven re-noising")
    g.add_argument("--no-tabu", action="store_true")
    g.add_argument("--no-restarts", action="store_true")
    g.add_argument("--backjump", action=argparse.BooleanOptionalAction, default=None,
                   help="undo the latest pass holding an implicated token and all after it (default: the task's)")
    g.add_argument("--confidence-renoise", type=float, default=None,
                   help="re-noise committed tokens whose probability falls below this")
    g.add_argument("--search", choices=["auto", "complete", "local"], default=None,
                   help="complete: exhaustive search that proves 'infeasible' (finite-domain tasks); local: "
                        "validator re-noising with tabu and restarts; auto (default): complete where the task allows")
    g.add_argument("--order", choices=["model", "fixed"], default=None,
                   help="complete search: rank choices by the model (default) or in a fixed, model-free order")
    g.add_argument("--check-unique", action="store_true",
                   help="complete search: go on past the first solution and report whether it is unique")
    g.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="wall-time budget for one batch (default: passes alone bound it)")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own code (off by default)")


def _solver_options(a: argparse.Namespace) -> dict[str, Any]:
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


def status_line(r: Any) -> str:
    """One line on a Result: its verdict, passes and (for the complete search) decisions."""
    if r.status == "infeasible":
        return f"infeasible, {r.messages[0] if r.messages else 'proved'}; passes: {r.passes}"
    head = "solved (validator passed)" if r.valid else "NOT solved (validator failed; nothing proved)"
    tail = f"passes: {r.passes}"
    tail += f", decisions: {r.decisions}, backtracks: {r.backtracks}" if r.decisions else f", restarts: {r.restarts}"
    if r.unique is not None:
        tail += ", unique" if r.unique else ", NOT unique (another solution exists)"
    return f"{head}; {tail}"


def cmd_tasks(a: argparse.Namespace) -> int:
    from .hub import MODELS_DIR
    from .registry import list_tasks, load_task

    for name in list_tasks():
        task = load_task(name)
        folder = MODELS_DIR / (task.default_model or "")
        shipped = task.default_model and any((folder / f).exists() for f in ("config.json",
                                                                             "adapter_config.json"))
        doc = (type(task).__doc__ or "").strip().splitlines()[0]
        print(f"{name:16s} {'model shipped' if shipped else 'no model    '}  {doc}")
    return 0


def _read_inputs(task, value: str) -> list[Any]:
    """INPUT is a file (the task reads it) or the problem itself."""
    path = Path(value)
    try:  # a long inline problem is no file name (ENAMETOOLONG), nor is one with a NUL
        is_file = len(value) < 4096 and "\n" not in value and path.is_file()
    except (OSError, ValueError):
        is_file = False
    if not is_file:
        return [value]
    try:
        return task.read_problems(path)
    except UnicodeDecodeError as e:
        raise ConstrainedError(f"{path} is not UTF-8 text: {e}") from None
    except OSError as e:
        raise ConstrainedError(f"cannot read {path}: {e.strerror or e}") from None


def _coerce(value: str) -> Any:
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
            raise ConstrainedError(f"unexpected argument {arg!r}")
        name = arg[2:].replace("-", "_")
        if "=" in name:
            name, value = name.split("=", 1)
            opts[name] = _coerce(value)
            i += 1
        elif i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            opts[name] = _coerce(extra[i + 1])
            i += 2
        else:
            opts[name] = True
            i += 1
    return opts


def cmd_solve(a: argparse.Namespace) -> int:
    from .api import make_solver, solve_with
    from .registry import load_task

    task = load_task(a.task, **task_options(a.task_args))
    problems = _read_inputs(task, a.input)
    solver = make_solver(task, a.model, a.device, trust_remote_code=a.trust_remote_code, **_solver_options(a))
    if a.chromatic:  # the fewest colours (graph colouring); --time-limit is its wall-time budget
        run = getattr(task, "cli_chromatic", None)
        if run is None:
            raise ConstrainedError("--chromatic is for graph-coloring only")
        return run(problems, solver, a.time_limit, a.json)
    results = solve_with(solver, problems, batch_size=a.batch_size, progress=len(problems) > 1 and not a.json,
                         on_invalid="raise")
    for r in results:
        if a.json:
            print(json.dumps(r.to_dict()))
            continue
        if r.solution is not None:
            print(task.format_solution(r.solution))
        if a.draw and r.solution is not None:
            draw = getattr(task, "draw", None)
            if draw is None:
                raise ConstrainedError(f"task {task.name!r} cannot draw its solutions")
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
    from .api import make_solver, solve_with
    from .registry import load_task

    out = Path(a.out)
    if out.is_dir() or (out.exists() and not out.is_file()):
        raise ConstrainedError(f"--out {out} is a directory or not a regular file; give an .html file path")
    task = load_task(a.task, **task_options(a.task_args))
    problems = _read_inputs(task, a.input)
    if not 0 <= a.item < len(problems):
        raise ConstrainedError(f"--item {a.item} is out of range: the input holds {len(problems)} problem(s)")
    solver = make_solver(task, a.model, a.device, trust_remote_code=a.trust_remote_code, trace=True,
                         **_solver_options(a))
    (r,) = solve_with(solver, [problems[a.item]], on_invalid="raise")
    r.to_html(task, a.out)
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
        raise ConstrainedError("--base and --merge belong to --mode lora")
    overrides = list(a.set or [])
    if a.steps is not None:
        overrides.append(f"train.max_steps={a.steps}")
    if a.batch_size is not None:
        overrides.append(f"train.batch_size={a.batch_size}")
    if a.lr is not None:
        overrides.append(f"train.learning_rate={a.lr}")
    if a.noise is not None:
        overrides.append(f"train.noise={a.noise}")
    if a.mode == "lora":
        from constrained.finetune.lora import finetune_lora

        res = finetune_lora(a.task, out=a.out, recipe_path=a.recipe, overrides=overrides, base=a.base,
                            init=a.init, merge=a.merge, resume=not a.no_resume)
    elif a.mode == "reward":
        from constrained.finetune.reward import finetune_reward

        res = finetune_reward(a.task, out=a.out, recipe_path=a.recipe, overrides=overrides, init=a.init,
                              resume=not a.no_resume)
    else:
        from constrained.finetune.run import finetune

        res = finetune(a.task, out=a.out, recipe_path=a.recipe, overrides=overrides, init=a.init,
                       resume=not a.no_resume)
    print(json.dumps(res, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="constrained", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("tasks", help="list the registered tasks")
    s.set_defaults(fn=cmd_tasks)

    # allow_abbrev off: an unknown --n is a task option, not an abbreviation of --no-...
    s = sub.add_parser("solve", help="solve a problem (or a file of them)", allow_abbrev=False)
    s.add_argument("task")
    s.add_argument("input", help="the problem itself, or a file")
    s.add_argument("--json", action="store_true", help="one JSON result per line")
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--draw", metavar="PNG", default=None, help="write a picture of the solution (tasks that can)")
    s.add_argument("--chromatic", action="store_true",
                   help="graph-coloring: the fewest colours, reported as [lower, upper] with a colouring "
                        "(--time-limit: its budget per graph, default 60 s)")
    _add_solver_options(s)
    s.set_defaults(fn=cmd_solve, task_args=True)

    s = sub.add_parser("trace", help="solve one problem and write an HTML replay of every pass",
                       allow_abbrev=False)
    s.add_argument("task")
    s.add_argument("input", help="the problem itself, or a file")
    s.add_argument("--out", default="trace.html", help="HTML file to write (default trace.html)")
    s.add_argument("--item", type=int, default=0, help="which problem of a file to trace (default 0)")
    _add_solver_options(s)
    s.set_defaults(fn=cmd_trace, task_args=True)

    s = sub.add_parser("finetune", help="train a denoiser for a task")
    s.add_argument("task")
    s.add_argument("--mode", choices=["full", "lora", "reward"], default="full")
    s.add_argument("--out", default=None, help="output folder (default runs/TASK)")
    s.add_argument("--recipe", default=None, help="recipe TOML (default finetune/recipes/TASK.toml)")
    s.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a recipe entry")
    s.add_argument("--init", default=None,
                   help="continue from this checkpoint (full, reward: a model; lora: an adapter of --base)")
    s.add_argument("--base", default=None,
                   help="lora: base model: 'default', 'task:NAME' (another task's model), a dir, a hub id")
    s.add_argument("--merge", action="store_true", help="lora: also write the merged model to OUT/merged")
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--lr", type=float, default=None)
    s.add_argument("--noise", choices=["mask", "uniform"], default=None)
    s.add_argument("--no-resume", action="store_true", help="ignore checkpoints already in --out")
    s.set_defaults(fn=cmd_finetune)

    from .bench import add_bench_parser

    add_bench_parser(sub)

    from .batch_cli import add_batch_parser

    add_batch_parser(sub, _add_solver_options)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "task_args", None) is True:
        args.task_args = extra  # task options, e.g. --k 3
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.fn(args)
    except (ConstrainedError, ValueError) as e:
        print(f"constrained: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file the command had to read or write (the message names it)
        print(f"constrained: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("constrained: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
