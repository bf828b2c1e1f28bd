"""Batch output files: one job per output (a lock held for the job's life), unusable outputs
refused with a message naming the path, and a full disk resumable."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import tiny_model

import constrained.batch as batch
from constrained import ConfigError, load_task
from constrained.batch import Budget, run_batch, scan_output
from constrained.cli import main
from constrained.outfile import exclusive_output, lock_path

PUZZLES = [p for p, _ in load_task("sudoku").generate(6, seed=3, grade="easy")]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("batch-out") / "tiny"
    tiny_model(load_task("sudoku")).save_pretrained(path)
    return path


def puzzle_file(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "puzzle": PUZZLES[i % len(PUZZLES)]}) + "\n"
                            for i in range(n)))
    return path


def ids(path: Path) -> Counter:
    return Counter(json.loads(line)["id"] for line in path.read_text().splitlines())


def _job(inp, out, model_dir, batch_size):
    run_batch("sudoku", inp, out, model=model_dir, budget=Budget(retries=0), max_passes=16,
              batch_size=batch_size, progress=False)


def _slow_job(inp, out, model_dir, batch_size):
    """The first writer, slowed to at least 0.1 s a batch so the second surely meets it running (the
    complete search solves many puzzles by propagation alone, faster than the second job starts)."""
    from constrained.solver import Solver

    run = Solver.run

    def slow(self, *args, **kw):
        time.sleep(0.1)
        return run(self, *args, **kw)

    Solver.run = slow
    _job(inp, out, model_dir, batch_size)


def test_two_writers_on_one_output_write_every_id_exactly_once(model_dir, tmp_path, capsys):
    n = 120
    inp = puzzle_file(tmp_path / "in.jsonl", n)
    out = tmp_path / "out.jsonl"
    first = multiprocessing.get_context("fork").Process(target=_slow_job, args=(inp, out, model_dir, 2))
    first.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 0):
            time.sleep(0.01)
        assert first.is_alive(), "the first job ended before the second could start"
        with pytest.raises(ConfigError, match=f"{out} is being written by another batch job .pid {first.pid}"):
            _job(inp, out, model_dir, 64)
        rc = main(["batch", "sudoku", "--input", str(inp), "--output", str(out), "--model", str(model_dir)])
        err = capsys.readouterr().err
        assert rc == 2 and "being written by another batch job" in err and "Traceback" not in err
    finally:
        first.join(timeout=120)
    assert first.exitcode == 0
    assert ids(out) == Counter(f"q{i}" for i in range(n))  # every id exactly once
    _job(inp, out, model_dir, 64)  # the lock went with the first job: a rerun is allowed, and adds nothing
    assert ids(out) == Counter(f"q{i}" for i in range(n))
    assert lock_path(out).exists()


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    out = tmp_path / "o.jsonl"
    with exclusive_output(out):
        with pytest.raises(ConfigError, match="another batch job"):
            with exclusive_output(out):
                pass
    with exclusive_output(out):  # released
        pass


def _bad_outputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    folder = tmp_path / "folder"
    folder.mkdir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    ro = tmp_path / "ro.jsonl"
    ro.write_text("")
    ro.chmod(0o444)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    return {"directory": (folder, "is a directory"), "fifo": (fifo, "not a regular file"),
            "read-only": (ro, "read-only"), "under a file": (a_file / "out.jsonl", "cannot")}


def test_unusable_outputs_are_refused_naming_the_path(model_dir, tmp_path, capsys):
    inp = puzzle_file(tmp_path / "in.jsonl", 3)
    for what, (path, msg) in _bad_outputs(tmp_path).items():
        with pytest.raises(ConfigError, match=msg) as e:
            _job(inp, path, model_dir, 2)
        assert str(path) in str(e.value), what
        rc = main(["batch", "sudoku", "--input", str(inp), "--output", str(path), "--model", str(model_dir)])
        err = capsys.readouterr().err
        assert rc == 2 and str(path) in err and "Traceback" not in err, (what, err)
        assert len(err.strip().splitlines()) == 1, err


def test_a_full_disk_names_the_output_and_the_job_resumes(model_dir, tmp_path, monkeypatch):
    n = 12
    inp = puzzle_file(tmp_path / "in.jsonl", n)
    out = tmp_path / "out.jsonl"
    real_write, calls = os.write, []

    def full(fd, data):  # the second batch finds the disk full after half its bytes
        calls.append(fd)
        if len(calls) == 2:
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(batch.os, "write", full)
    with pytest.raises(ConfigError, match=f"cannot write {out}: No space left on device .disk full"):
        _job(inp, out, model_dir, 4)
    monkeypatch.setattr(batch.os, "write", real_write)
    assert 0 < len(scan_output(out, repair=False)) < n
    _job(inp, out, model_dir, 4)  # the torn last line is cut off and its item redone
    assert ids(out) == Counter(f"q{i}" for i in range(n))
