"""Batch files: reading the JSONL input, scanning and appending to the output (resume after a
crash), the rank parts' names, and merging the parts into one output.

The formats are described in :mod:`constrained.batch`; the records are
:mod:`constrained.batch_records`; the output's exclusive lock is :mod:`constrained.outfile`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .batch_records import PROBLEM_KEYS, BatchRecord, BatchSummary, InputItem, id_key, iter_records, summarize
from .errors import ConfigError
from .outfile import exclusive_output, lock_path, write_error


def part_path(output: str | Path, rank: int, world_size: int) -> Path:
    """``out.jsonl`` -> ``out.rank-K-of-N.jsonl``."""
    out = Path(output)
    return out.with_name(f"{out.stem}.rank-{rank}-of-{world_size}{out.suffix}")


def summary_path(output: str | Path) -> Path:
    """``out.jsonl`` -> ``out.summary.json``."""
    out = Path(output)
    return out.with_name(f"{out.stem}.summary.json")


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


class Appender:
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
            for rec in iter_records(src):
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
