"""Batch records: what a batch job reads and writes, one dataclass per kind, and the summary.

:class:`Budget` (what one item may spend), :class:`InputItem` (one input line),
:class:`BatchRecord` (one output line), :class:`BatchSummary` with :func:`summarize` (counts and
passes distributions over an output file), and how ids compare and shard (:func:`id_key`,
:func:`shard_of`). The file formats are described in :mod:`constrained.batch`; reading and
merging the files is :mod:`constrained.batch_files`, the job :mod:`constrained.batch`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

PROBLEM_KEYS = ("problem", "puzzle", "input")
STATUSES = ("solved", "infeasible", "unsolved", "invalid-input", "error")
MAX_MESSAGES = 5  # validator messages kept per unsolved record


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


# ---------------------------------------------------------------------------------------
# reading records back, and the summary
# ---------------------------------------------------------------------------------------
def iter_records(path: Path) -> Iterator[dict[str, Any]]:
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
        for rec in iter_records(output):
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
