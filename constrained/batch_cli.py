"""``constrained batch``: the command-line face of :mod:`constrained.batch`.

Kept apart from :mod:`constrained.batch` so building the parser imports nothing heavy; the
options it shares with ``solve`` and ``trace`` come from :mod:`constrained.cli_options`.

    constrained batch TASK --input in.jsonl --output out.jsonl [solver options] [task options]
    constrained batch merge out.jsonl [--world-size N] [--keep-parts]
"""

from __future__ import annotations

import argparse
import json

from .cli_options import add_solver_options, checked_task_options, configure_threads, flags, solver_options
from .errors import ConfigError

EPILOG = """\
input: one JSON object per line with an "id" and the problem under "problem", "puzzle" or
"input" (or --problem-key); a line that is not an object is the problem itself (id: its line
number). Output: one result record per input record, appended and fsynced per batch; rerun
the same command to finish a job that died. Under torchrun / accelerate launch each rank
solves its shard into OUT.rank-K-of-N.jsonl and rank 0 merges them into OUT at the end.
"""


def add_batch_parser(sub: argparse._SubParsersAction, task_help: str = "") -> None:
    """The ``batch`` command on ``sub``; ``task_help``: the task options' epilog of solve and trace."""
    s = sub.add_parser("batch", help="solve a JSONL file of problems (resumable, sharded by rank)",
                       allow_abbrev=False, epilog=EPILOG + ("\n" + task_help if task_help else ""),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("task", help="task name, or 'merge' to merge rank parts: constrained batch merge OUT")
    s.add_argument("--input", default=None, help="JSONL file of problems")
    s.add_argument("--output", default=None, help="JSONL file of results (appended to; resumed)")
    s.add_argument("--batch-size", type=int, default=256, help="items per model batch (default 256)")
    s.add_argument("--retries", type=int, default=2,
                   help="extra attempts with a new seed for items still unsolved (default 2)")
    s.add_argument("--item-passes", type=int, default=None,
                   help="model passes an item may use over all attempts (default: --max-passes each)")
    s.add_argument("--item-seconds", type=float, default=None,
                   help="no new attempt for an item after this many seconds of its batch")
    s.add_argument("--problem-key", default=None, help="the input key holding the problem "
                   "(default: the first of problem, puzzle, input)")
    s.add_argument("--no-merge", action="store_true", help="leave the rank parts unmerged")
    s.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    g = s.add_argument_group("merge")
    g.add_argument("--world-size", type=int, default=None, help="merge: how many rank parts (default: found)")
    g.add_argument("--keep-parts", action="store_true", help="merge: keep the rank parts afterwards")
    add_solver_options(s)
    s.set_defaults(fn=cmd_batch, task_args=True, known_flags=flags(s))


def _print(summary, as_json: bool) -> None:
    from .batch import summary_path  # noqa: PLC0415

    if as_json:
        print(json.dumps(summary.to_dict(), indent=1))
    else:
        print(summary.text())
        if summary_path(summary.output).exists():  # a rank's part summary is gone once rank 0 merged
            print(f"summary written to {summary_path(summary.output)}")


def cmd_batch(a: argparse.Namespace) -> int:
    from .batch import Budget, merge_outputs, run_batch  # noqa: PLC0415

    if a.task == "merge":
        rest = list(a.task_args)
        output = a.output or (rest.pop(0) if rest and not rest[0].startswith("--") else None)
        if output is None:
            raise ConfigError("merge needs the output file: constrained batch merge OUT.jsonl")
        if rest:
            raise ConfigError(f"unexpected argument(s) for merge: {' '.join(rest)}")
        _print(merge_outputs(output, a.world_size, keep_parts=a.keep_parts), a.json)
        return 0
    if a.input is None or a.output is None:
        raise ConfigError("constrained batch TASK needs --input IN.jsonl and --output OUT.jsonl")
    from .registry import load_task  # noqa: PLC0415

    task = load_task(a.task, **checked_task_options(a))
    configure_threads(a.threads)
    budget = Budget(retries=a.retries, max_passes=a.item_passes, max_seconds=a.item_seconds)
    summary = run_batch(task, a.input, a.output, model=a.model, device=a.device, batch_size=a.batch_size,
                        budget=budget, problem_key=a.problem_key, merge=not a.no_merge, progress=a.progress,
                        trust_remote_code=a.trust_remote_code, **solver_options(a))
    _print(summary, a.json)
    return 0
