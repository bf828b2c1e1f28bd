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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from torch import nn

from .errors import ConfigError, InvalidProblem
from .outfile import exclusive_output, lock_path, write_error
from .registry import load_task
from .solver import Result, Solver, SolverConfig
from .task import Task

PROBLEM_KEYS = ("problem", "puzzle", "input")
STATUSES = ("solved", "infeasible", "unsolved", "invalid-input", "error")
MAX_MESSAGES = 5  # validator messages kept per unsolved record


# ---------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------
@dataclass
class Budget:
    """What one item may spend.

    retries      extra attempts, each with a new seed, for items the validator still rejects
    max_passes   model passes over all attempts (None: ``SolverConfig.max_passes`` per attempt)
    max_seconds  wall-clock seconds from the start of the item's batch after which no new
                 attempt starts (a running attempt is not cut short)
    """

    retries: int = 2
    max_passes: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ConfigError(f"retries must be >= 0, got {self.retries}")
        if self.max_passes is not None and self.max_passes < 1:
            raise ConfigError(f"max_passes (item budget) must be >= 1, got {self.max_passes}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"max_seconds must be > 0, got {self.max_seconds}")


@dataclass
class InputItem:
    """One input record: its id, line, and the problem or why there is none."""

    id: Any
    line: int
    problem: Any = None
    reason: str | None = None  # set when the record is unusable (malformed JSON, no problem, ...)

    @property
    def key(self) -> str:
        return id_key(self.id)


@dataclass
class BatchRecord:
    """One output line."""

    id: Any
    line: int
    status: str
    solution: Any = None
    passes: int = 0
    attempts: int = 0
    restarts: int = 0
    violations: list[int] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    reason: str | None = None
    seconds: float = 0.0
    model: str | None = None
    settings: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), default=str)


@dataclass
class BatchSummary:
    """What a job did. ``counts`` cover every record in the output (earlier runs included);
    ``processed``, ``seconds`` and ``items_per_second`` this run (all ranks, after a merge)."""

    output: str
    total: int
    counts: dict[str, int]
    processed: int
    skipped: int
    seconds: float
    items_per_second: float
    passes: dict[str, Any]
    rank: int = 0
    world_size: int = 1
    merged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        c = self.counts
        solved = self.passes.get("solved", {})
        line = (f"{self.total} records in {self.output}: {c.get('solved', 0)} solved, "
                f"{c.get('infeasible', 0)} infeasible, {c.get('unsolved', 0)} unsolved, "
                f"{c.get('invalid-input', 0)} invalid input, "
                f"{c.get('error', 0)} errors")
        run = (f"this run: {self.processed} items in {self.seconds:.1f} s "
               f"({self.items_per_second:.2f} items/s), {self.skipped} already done")
        if solved.get("count"):
            run += (f"; passes to solve: median {solved['median']}, p90 {solved['p90']}, "
                    f"max {solved['max']}")
        return line + "\n" + run


def id_key(value: Any) -> str:
    """How ids compare: as strings (``7`` and ``"7"`` are the same id)."""
    return str(value)


def shard_of(key: str, world_size: int) -> int:
    """The rank that owns id ``key``: a stable hash, the same on every machine and run."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % world_size


def part_path(output: str | Path, rank: int, world_size: int) -> Path:
    """``out.jsonl`` -> ``out.rank-K-of-N.jsonl``."""
    out = Path(output)
    return out.with_name(f"{out.stem}.rank-{rank}-of-{world_size}{out.suffix}")


def summary_path(output: str | Path) -> Path:
    """``out.jsonl`` -> ``out.summary.json``."""
    out = Path(output)
    return out.with_name(f"{out.stem}.summary.json")


# ---------------------------------------------------------------------------------------
# input and output files
# ---------------------------------------------------------------------------------------
def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON: non-finite numbers are refused")


def read_items(path: str | Path, problem_key: str | None = None) -> Iterator[InputItem]:
    """Stream the input records of ``path`` (see the module doc for the format)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"input file {path} does not exist")
    keys = (problem_key,) if problem_key else PROBLEM_KEYS
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw, parse_constant=_no_constant)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
                yield InputItem(id=n, line=n, reason=f"line {n}: malformed JSON: {e}")
                continue
            except ValueError as e:  # NaN / Infinity
                yield InputItem(id=n, line=n, reason=f"line {n}: {e}")
                continue
            if not isinstance(value, dict):
                yield InputItem(id=n, line=n, problem=value)
                continue
            rid = value.get("id", n)
            if isinstance(rid, bool) or not isinstance(rid, (str, int)):
                yield InputItem(id=n, line=n,
                                reason=f"line {n}: id must be a string or an integer, got {rid!r}")
                continue
            key = next((k for k in keys if k in value), None)
            if key is None:
                yield InputItem(id=rid, line=n, reason=f"line {n}: no problem: expected a key "
                                + " or ".join(repr(k) for k in keys))
                continue
            yield InputItem(id=rid, line=n, problem=value[key])


def scan_output(path: str | Path, repair: bool = True) -> set[str]:
    """Ids already written to ``path``. A torn last line (no newline, or not a JSON record: a
    process killed mid-write) is cut off when ``repair``; a bad line before the last is an error."""
    path = Path(path)
    done: set[str] = set()
    if not path.exists():
        return done
    good_end = 0
    bad: tuple[int, str] | None = None
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if bad is not None:
                raise ConfigError(f"{path} line {bad[0]} is not a result record ({bad[1]}) and more lines "
                                  "follow it; this is not a file a batch job wrote")
            if not raw.endswith(b"\n"):
                bad = (n, "torn: no newline")
                continue
            try:
                rec = json.loads(raw)
                key = id_key(rec["id"])
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
                bad = (n, f"{type(e).__name__}: {e}")
                continue
            done.add(key)
            good_end += len(raw)
    if bad is not None and repair:
        with path.open("r+b") as f:
            f.truncate(good_end)
            f.flush()
            os.fsync(f.fileno())
        print(f"constrained batch: {path} line {bad[0]} was torn ({bad[1]}); cut off, its item is redone",
              file=sys.stderr)
    return done


class _Appender:
    """Appends whole records; every ``write`` is flushed and fsynced before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise write_error(path, e) from None

    def write(self, records: list[BatchRecord]) -> None:
        if not records:
            return
        data = "".join(r.to_json() + "\n" for r in records).encode("utf-8")
        try:
            while data:  # unbuffered: a failed write leaves at most a torn last line, cut off on resume
                data = data[os.write(self.fd, data):]
            os.fsync(self.fd)
        except OSError as e:
            raise write_error(self.path, e) from None

    def close(self) -> None:
        os.close(self.fd)


def _iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Complete records of a result file (a torn last line is left out)."""
    with path.open("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(rec, dict) and "id" in rec:
                yield rec


# ---------------------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------------------
def _distribution(counter: Counter[int]) -> dict[str, Any]:
    n = sum(counter.values())
    if not n:
        return {"count": 0}
    values = sorted(counter)

    def q(p: float) -> int:
        rank, seen = p * (n - 1), 0
        for v in values:
            seen += counter[v]
            if seen > rank:
                return v
        return values[-1]

    buckets: Counter[str] = Counter()
    for v, c in counter.items():  # power-of-two buckets: 1, 2-3, 4-7, ...
        lo = 1 << (max(v, 1).bit_length() - 1)
        buckets[f"{lo}-{2 * lo - 1}" if lo > 1 else str(v)] += c
    order = sorted(buckets, key=lambda b: int(b.split("-")[0]))
    return {"count": n, "mean": round(sum(v * c for v, c in counter.items()) / n, 2), "min": values[0],
            "median": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": values[-1],
            "histogram": {b: buckets[b] for b in order}}


def summarize(output: str | Path, *, processed: int = 0, skipped: int = 0, seconds: float = 0.0,
              rank: int = 0, world_size: int = 1, merged: bool = False) -> BatchSummary:
    """Counts and passes distributions over every record of ``output`` (streamed)."""
    output = Path(output)
    counts: Counter[str] = Counter()
    solved_passes: Counter[int] = Counter()
    all_passes: Counter[int] = Counter()
    if output.exists():
        for rec in _iter_records(output):
            status = rec.get("status", "error")
            counts[status] += 1
            if status in ("solved", "unsolved"):
                all_passes[int(rec.get("passes", 0))] += 1
                if status == "solved":
                    solved_passes[int(rec.get("passes", 0))] += 1
    return BatchSummary(
        output=str(output), total=sum(counts.values()), counts={s: counts.get(s, 0) for s in STATUSES},
        processed=processed, skipped=skipped, seconds=round(seconds, 3),
        items_per_second=round(processed / seconds, 3) if seconds > 0 else 0.0,
        passes={"solved": _distribution(solved_passes), "solved_or_unsolved": _distribution(all_passes)},
        rank=rank, world_size=world_size, merged=merged)


def write_summary(summary: BatchSummary, path: str | Path) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary.to_dict(), indent=1) + "\n")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------
# merging rank parts
# ---------------------------------------------------------------------------------------
_PART = re.compile(r"\.rank-(\d+)-of-(\d+)$")


def find_parts(output: str | Path, world_size: int | None = None) -> list[Path]:
    """The rank parts of ``output`` (``OUT.rank-K-of-N.jsonl``); with ``world_size`` all N must exist."""
    out = Path(output)
    found: dict[int, dict[int, Path]] = {}
    for p in out.parent.glob(f"{out.stem}.rank-*-of-*{out.suffix}"):
        m = _PART.search(p.name[: len(p.name) - len(out.suffix)] if out.suffix else p.name)
        if m and p.name.startswith(out.stem + ".rank-"):
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = p
    if world_size is None:
        if not found:
            raise ConfigError(f"no rank parts of {out} found ({out.stem}.rank-K-of-N{out.suffix})")
        if len(found) > 1:
            raise ConfigError(f"parts of {out} from several world sizes {sorted(found)}: pass --world-size")
        world_size = next(iter(found))
    parts = found.get(world_size, {})
    missing = [k for k in range(world_size) if k not in parts]
    if missing:
        raise ConfigError(f"rank part(s) {missing} of {world_size} are missing for {out} "
                          f"(expected {part_path(out, missing[0], world_size).name})")
    return [parts[k] for k in range(world_size)]


def merge_outputs(output: str | Path, world_size: int | None = None, *,
                  keep_parts: bool = False) -> BatchSummary:
    """Merge the rank parts (and any earlier ``output``) into ``output``: each id once, written
    to a temporary file, fsynced and renamed into place; then the parts are removed (unless
    ``keep_parts``) and ``OUT.summary.json`` is written."""
    with exclusive_output(output) as out:
        return _merge(out, world_size, keep_parts)


def _merge(out: Path, world_size: int | None, keep_parts: bool) -> BatchSummary:
    parts = find_parts(out, world_size)
    seen: set[str] = set()
    tmp = out.with_name(out.name + ".merging")
    sources = ([out] if out.exists() else []) + parts
    with tmp.open("wb") as f:
        for src in sources:
            for rec in _iter_records(src):
                key = id_key(rec["id"])
                if key in seen:
                    continue
                seen.add(key)
                f.write((json.dumps(rec, separators=(",", ":")) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    processed, seconds = 0, 0.0
    for p in parts:  # this run's speed: items of every rank over the slowest rank's time
        sp = summary_path(p)
        if sp.exists():
            try:
                s = json.loads(sp.read_text())
                processed += int(s.get("processed", 0))
                seconds = max(seconds, float(s.get("seconds", 0.0)))
            except (json.JSONDecodeError, ValueError):
                pass
    summary = summarize(out, processed=processed, seconds=seconds, world_size=len(parts), merged=True)
    write_summary(summary, summary_path(out))
    if not keep_parts:
        for p in parts:  # (each rank released its part's lock before the merge)
            p.unlink(missing_ok=True)
            summary_path(p).unlink(missing_ok=True)
            lock_path(p).unlink(missing_ok=True)
    return summary


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
            self.task.encode([item.problem])
        except (InvalidProblem, ValueError, TypeError) as e:
            return None, self._record(item, "invalid-input", reason=f"line {item.line}: {e}")
        except Exception as e:  # noqa: BLE001 (a task failing on one record must not stop the job)
            return None, self._record(item, "error", reason=f"line {item.line}: {type(e).__name__}: {e}")
        return key, None

    def run(self, items: Iterator[InputItem], out: _Appender, bar: Any = None) -> Counter[str]:
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
    writer = _Appender(mine)
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
    "PROBLEM_KEYS",
    "STATUSES",
    "BatchJob",
    "BatchRecord",
    "BatchSummary",
    "Budget",
    "InputItem",
    "dist_env",
    "find_parts",
    "merge_outputs",
    "part_path",
    "read_items",
    "run_batch",
    "scan_output",
    "shard_of",
    "summarize",
    "summary_path",
]
