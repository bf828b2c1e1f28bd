"""Batch jobs: JSONL in, validator-certified results out; resumable, sharded across ranks.

``run_batch(task, "in.jsonl", "out.jsonl")`` (or ``constrained batch TASK --input in.jsonl
--output out.jsonl``) streams the input, groups records into model batches by
``task.group_key`` (same layout, so no padding), solves each batch with one Solver, retries
the items the validator still rejects with a new seed while their budget lasts, and appends
one result record per input record to the output, flushed and fsynced per batch.

Input: one JSON value per line. An object carries its ``id`` (string or integer; the line
number when absent) and its problem under ``problem``, ``puzzle`` or ``input`` (the first
present; ``problem_key`` picks another); any other JSON value is the problem itself, with the
line number as id. Blank lines are skipped.

Output: one JSON object per input record (:class:`BatchRecord`): ``id``, ``line``, ``status``
(``solved`` / ``infeasible`` (proved to have no solution) / ``unsolved`` / ``invalid-input`` /
``error``), ``solution``, ``passes``,
``attempts``, ``restarts``, ``violations`` (positions still implicated), ``messages``,
``reason`` (why invalid or failed), ``seconds``, ``model`` and ``settings``. Records are
written batch by batch, not in input order; ``line`` gives the input line.

Crash safety: rerunning the same command skips ids already in the output and does the rest;
a torn last line left by a killed process is cut off and its item redone. One job per output:
the output is checked and locked (:mod:`constrained.outfile`) before the model loads, and a
second job on it is refused while the first runs.

Sharding: under ``torchrun`` / ``accelerate launch`` (``RANK`` / ``WORLD_SIZE`` in the
environment) each rank takes the ids whose hash falls to it and writes
``OUT.rank-K-of-N.jsonl``; when every rank is done (a ``torch.distributed`` barrier, gloo
unless the caller initialised another backend), rank 0 merges the parts into ``OUT``.
:func:`merge_outputs` (``constrained batch merge OUT``) does the same by hand.

The job is here; its records are :mod:`constrained.batch_records` and its files (input, output,
rank parts, merging) :mod:`constrained.batch_files`, whose public names this module re-exports.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from torch import nn

from .batch_files import (
    Appender,
    find_parts,
    merge_outputs,
    part_path,
    read_items,
    scan_output,
    summary_path,
    write_summary,
)
from .batch_records import (
    MAX_MESSAGES,
    PROBLEM_KEYS,
    STATUSES,
    BatchRecord,
    BatchSummary,
    Budget,
    InputItem,
    id_key,
    shard_of,
    summarize,
)
from .errors import ConfigError, InvalidProblem
from .outfile import exclusive_output, write_error
from .registry import load_task
from .solver import Result, Solver, SolverConfig
from .task import Task


# ---------------------------------------------------------------------------------------
# ranks
# ---------------------------------------------------------------------------------------
def dist_env(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world size): as given, else from an initialised ``torch.distributed``, else from
    ``RANK`` / ``WORLD_SIZE`` (set by torchrun and accelerate launch), else (0, 1)."""
    import torch.distributed as dist

    if rank is None and world_size is None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    try:
        r = int(os.environ.get("RANK", 0)) if rank is None else int(rank)
        w = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else int(world_size)
    except ValueError as e:
        raise ConfigError(f"RANK / WORLD_SIZE must be integers: {e}") from None
    if w < 1 or not 0 <= r < w:
        raise ConfigError(f"rank {r} is out of range for world size {w}")
    return r, w


@contextmanager
def _process_group(rank: int, world_size: int) -> Iterator[Any]:
    """The torch.distributed module to barrier with, or None: the caller's group if one is
    initialised, else a gloo group of our own when MASTER_ADDR / MASTER_PORT are set."""
    import torch.distributed as dist

    if world_size == 1 or not dist.is_available():
        yield None
        return
    if dist.is_initialized():
        yield dist
        return
    if not (os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT")):
        yield None
        return
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timedelta(hours=24))
    try:
        yield dist
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------
# the job
# ---------------------------------------------------------------------------------------
def _json_solution(task: Task, solution: Any) -> Any:
    try:
        json.dumps(solution)
        return solution
    except (TypeError, ValueError):
        return task.format_solution(solution)


def _model_name(model: str | Path | nn.Module, task: Task) -> str:
    if isinstance(model, nn.Module):
        path = getattr(getattr(model, "config", None), "_name_or_path", "")
        return str(path) if path else type(model).__name__
    if str(model) == "default":
        return f"default:{task.default_model}"
    return str(model)


class BatchJob:
    """One rank's share of a batch job over a ready Solver (the model stays loaded)."""

    def __init__(self, solver: Solver, *, budget: Budget | None = None, batch_size: int = 256,
                 model_name: str = "", max_pending: int | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.solver = solver
        self.task = solver.task
        self.budget = budget or Budget()
        self.batch_size = batch_size
        self.max_pending = max_pending or 4 * batch_size  # items held over all groups before solving
        self.model_name = model_name
        cfg = {k: v for k, v in asdict(solver.config).items() if k != "trace"}
        self.settings = {"solver": cfg, "budget": asdict(self.budget), "batch_size": batch_size}

    # --- one batch ---------------------------------------------------------------------
    def _record(self, item: InputItem, status: str, **kw: Any) -> BatchRecord:
        return BatchRecord(id=item.id, line=item.line, status=status, model=self.model_name,
                           settings=self.settings, **kw)

    def solve(self, items: list[InputItem]) -> list[BatchRecord]:
        """Solve ``items`` (already encodable, one group), retrying unsolved ones within the budget."""
        task, solver, budget = self.task, self.solver, self.budget
        problems = [it.problem for it in items]
        n = len(items)
        t0 = time.perf_counter()
        best: list[Result | None] = [None] * n
        passes, restarts, attempts = [0] * n, [0] * n, [0] * n
        todo = list(range(n))
        base = solver.config
        for attempt in range(budget.retries + 1):
            if not todo:
                break
            if attempt and budget.max_seconds is not None and time.perf_counter() - t0 >= budget.max_seconds:
                break
            cap = base.max_passes
            if budget.max_passes is not None:
                cap = min(cap, min(budget.max_passes - passes[i] for i in todo))
                if cap < 1:
                    break
            sub = [problems[i] for i in todo]
            solver.config = dataclasses.replace(base, max_passes=cap, seed=base.seed + attempt)
            try:
                results = solver.run(task.encode(sub), sub)
            finally:
                solver.config = base
            left = []
            for i, r in zip(todo, results):
                passes[i] += r.passes
                restarts[i] += r.restarts
                attempts[i] += 1
                b = best[i]
                if b is None or r.status != "unsolved" or len(r.violations) < len(b.violations):
                    best[i] = r
                if r.status == "unsolved":  # solved and proved-infeasible items are final
                    left.append(i)
            todo = left
        share = (time.perf_counter() - t0) / n
        out = []
        for i, it in enumerate(items):
            r = best[i]
            assert r is not None
            out.append(self._record(
                it, r.status, solution=_json_solution(task, r.solution),
                passes=passes[i], attempts=attempts[i], restarts=restarts[i], violations=list(r.violations),
                messages=[] if r.valid else list(r.messages[:MAX_MESSAGES]), seconds=round(share, 4)))
        return out

    def solve_isolated(self, items: list[InputItem]) -> list[BatchRecord]:
        """:meth:`solve`, with a failure confined: the batch is split in halves until the items
        that fail alone are found; they become ``error`` records, the rest are solved."""
        try:
            return self.solve(items)
        except InvalidProblem as e:  # parsed alone (check) but does not encode: found by halving
            if len(items) == 1:
                return [self._record(items[0], "invalid-input", reason=f"line {items[0].line}: {e}")]
        except Exception as e:  # noqa: BLE001 (any failure of one batch must not stop the job)
            if len(items) == 1:
                return [self._record(items[0], "error", reason=f"{type(e).__name__}: {e}")]
        mid = len(items) // 2
        return self.solve_isolated(items[:mid]) + self.solve_isolated(items[mid:])

    # --- the stream --------------------------------------------------------------------
    def check(self, item: InputItem) -> tuple[Any, BatchRecord | None]:
        """(group key, None) for a usable item, else (None, its invalid-input / error record)."""
        if item.reason is not None:
            return None, self._record(item, "invalid-input", reason=item.reason)
        try:
            key = self.task.group_key(item.problem)
            self.task.parse(item.problem)  # encoded with its batch; one that parses but does not fit is found there
        except (InvalidProblem, ValueError, TypeError) as e:
            return None, self._record(item, "invalid-input", reason=f"line {item.line}: {e}")
        except Exception as e:  # noqa: BLE001 (a task failing on one record must not stop the job)
            return None, self._record(item, "error", reason=f"line {item.line}: {type(e).__name__}: {e}")
        return key, None

    def run(self, items: Iterator[InputItem], out: Appender, bar: Any = None) -> Counter[str]:
        """Solve every item of ``items`` and append its record to ``out``; returns status counts."""
        counts: Counter[str] = Counter()
        pending: dict[Any, list[InputItem]] = {}
        n_pending = 0
        rejected: list[BatchRecord] = []

        def emit(records: list[BatchRecord]) -> None:
            out.write(records)
            counts.update(r.status for r in records)
            if bar is not None:
                bar.update(len(records))
                bar.set_postfix({k: counts[k] for k in STATUSES if counts[k]}, refresh=False)

        def flush(key: Any) -> None:
            nonlocal n_pending, rejected
            group = pending.pop(key)
            n_pending -= len(group)
            emit(rejected + self.solve_isolated(group))
            rejected = []

        for item in items:
            key, bad = self.check(item)
            if bad is not None:
                rejected.append(bad)
                if len(rejected) >= self.batch_size:
                    emit(rejected)
                    rejected = []
                continue
            group = pending.setdefault(key, [])
            group.append(item)
            n_pending += 1
            if len(group) >= self.batch_size:
                flush(key)
            elif n_pending >= self.max_pending:  # many small groups: solve the largest
                flush(max(pending, key=lambda k: len(pending[k])))
        for key in list(pending):
            flush(key)
        emit(rejected)
        return counts


def _todo(path: Path, problem_key: str | None, done: set[str], rank: int, world_size: int,
          ) -> Iterator[InputItem]:
    """This rank's input items not yet done. An id that an earlier line already used becomes
    ``ID@lineN`` and an invalid-input record, so every output id is unique."""
    seen: dict[str, int] = {}
    for item in read_items(path, problem_key):
        key = item.key
        if key in seen:
            item = InputItem(id=f"{item.id}@line{item.line}", line=item.line,
                             reason=f"line {item.line}: duplicate id {item.id!r} (first on line {seen[key]})")
            key = item.key
        else:
            seen[key] = item.line
        if world_size > 1 and shard_of(key, world_size) != rank:
            continue
        if key in done:
            continue
        yield item


def count_todo(path: str | Path, problem_key: str | None, done: set[str], rank: int = 0,
               world_size: int = 1) -> int:
    return sum(1 for _ in _todo(Path(path), problem_key, done, rank, world_size))


def run_batch(task: str | Task, input: str | Path, output: str | Path, *,
              model: str | Path | nn.Module = "default", device: str = "cpu", batch_size: int = 256,
              budget: Budget | None = None, problem_key: str | None = None, rank: int | None = None,
              world_size: int | None = None, merge: bool = True, progress: bool | None = None,
              solver: Solver | None = None, config: SolverConfig | None = None,
              trust_remote_code: bool = False, **options: Any) -> BatchSummary:
    """Solve every record of the JSONL file ``input`` into ``output`` (see the module doc).

    Returns this rank's summary (rank 0 after an automatic merge: the merged one), also written
    to ``OUT.summary.json`` (``OUT.rank-K-of-N.summary.json`` for a rank's part). ``solver``: a
    ready Solver (then ``model``, ``device``, ``config`` and ``options`` are not used). Solver
    options (``max_passes``, ``seed``, ...) are those of :func:`constrained.solve`.
    """
    rank, world_size = dist_env(rank, world_size)
    task = load_task(task) if solver is None else solver.task
    in_path, out_path = Path(input), Path(output)
    if not in_path.is_file():
        raise ConfigError(f"input file {in_path} does not exist")
    if in_path.resolve() == out_path.resolve():
        raise ConfigError(f"input and output are the same file: {in_path}")
    mine = part_path(out_path, rank, world_size) if world_size > 1 else out_path
    with exclusive_output(mine):  # checked and held before any model loads, until the job ends
        summary = _run_locked(task, in_path, out_path, mine, model=model, device=device,
                              batch_size=batch_size, budget=budget, problem_key=problem_key, rank=rank,
                              world_size=world_size, progress=progress, solver=solver, config=config,
                              trust_remote_code=trust_remote_code, **options)
    if world_size > 1:
        with _process_group(rank, world_size) as dist:
            if dist is not None:
                dist.barrier()
                if rank == 0 and merge:
                    summary = merge_outputs(out_path, world_size)
                dist.barrier()  # nobody leaves (and rereads the output) before the merge is written
            elif rank == 0 and merge:
                print(f"constrained batch: no process group (MASTER_ADDR/MASTER_PORT unset): merge the "
                      f"parts when every rank is done: constrained batch merge {out_path}", file=sys.stderr)
    return summary


def _run_locked(task: Task, in_path: Path, out_path: Path, mine: Path, *, model: Any, device: str,
                batch_size: int, budget: Budget | None, problem_key: str | None, rank: int, world_size: int,
                progress: bool | None, solver: Solver | None, config: SolverConfig | None,
                trust_remote_code: bool, **options: Any) -> BatchSummary:
    from .api import make_solver  # noqa: PLC0415 (api imports hub, which is heavy)

    if solver is None:
        if device.startswith("cuda") and ":" not in device and world_size > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"  # one GPU per rank
        model_name = _model_name(model, task)
        solver = make_solver(task, model, device, config, trust_remote_code=trust_remote_code, **options)
    else:
        model_name = _model_name(solver.model, task)
    job = BatchJob(solver, budget=budget, batch_size=batch_size, model_name=model_name)
    done = scan_output(mine)
    if world_size > 1 and out_path.exists():  # merged by an earlier run
        done |= scan_output(out_path)
    total_todo = count_todo(in_path, problem_key, done, rank, world_size)
    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress:
        from tqdm import tqdm  # noqa: PLC0415

        desc = f"batch {task.name}" + (f" rank {rank}/{world_size}" if world_size > 1 else "")
        bar = tqdm(total=total_todo, desc=desc, unit="item", position=rank if world_size > 1 else 0,
                   dynamic_ncols=True)
    t0 = time.perf_counter()
    writer = Appender(mine)
    try:
        counts = job.run(_todo(in_path, problem_key, done, rank, world_size), writer, bar)
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    summary = summarize(mine, processed=sum(counts.values()), skipped=len(done), seconds=seconds,
                        rank=rank, world_size=world_size)
    try:
        write_summary(summary, summary_path(mine))
    except OSError as e:
        raise write_error(summary_path(mine), e) from None
    return summary


__all__ = [
    "MAX_MESSAGES",
    "PROBLEM_KEYS",
    "STATUSES",
    "BatchJob",
    "BatchRecord",
    "BatchSummary",
    "Budget",
    "InputItem",
    "dist_env",
    "find_parts",
    "id_key",
    "merge_outputs",
    "part_path",
    "read_items",
    "run_batch",
    "scan_output",
    "shard_of",
    "summarize",
    "summary_path",
    "write_summary",
]
