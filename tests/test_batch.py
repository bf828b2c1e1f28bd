"""Batch jobs: one certified record per input record, resume after a kill, bad records
isolated, rank shards merged."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import EASY, tiny_model
from constrained.tasks.sudoku import solve_exact

from constrained import ConfigError, load_task, make_solver
from constrained.batch import (
    Budget,
    find_parts,
    merge_outputs,
    part_path,
    run_batch,
    scan_output,
    shard_of,
    summary_path,
)
from constrained.cli import main
from constrained.solver import Solver


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("batch") / "tiny"
    tiny_model(load_task("sudoku")).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def easy_puzzles():
    return [p for p, _ in load_task("sudoku").generate(6, seed=3, grade="easy")] + [EASY]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def puzzle_file(path: Path, puzzles: list[str], n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "puzzle": puzzles[i % len(puzzles)]}) + "\n"
                            for i in range(n)))
    return path


def test_every_input_record_gets_one_result_with_its_status(model_dir, easy_puzzles, tmp_path):
    inp = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": f"p{i}", "puzzle": p}) for i, p in enumerate(easy_puzzles)]
    lines += [
        "{not json",                                               # line 8: malformed
        json.dumps({"id": "short", "problem": "123"}),              # invalid problem
        json.dumps({"id": "clash", "input": "11" + "." * 79}),      # broken givens
        json.dumps({"id": "nokey", "grid": EASY}),                  # no problem key
        json.dumps({"id": "p0", "problem": EASY}),                  # duplicate id
        json.dumps(EASY),                                           # bare problem, id = line number
        "",                                                         # blank: skipped
        json.dumps({"puzzle": EASY}),                               # no id: line number
    ]
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    task = load_task("sudoku")
    s = run_batch(task, inp, out, model=model_dir, batch_size=4, max_passes=48)

    recs = {r["id"]: r for r in records(out)}
    assert len(recs) == len(records(out)) == 14
    assert recs[8]["status"] == "invalid-input" and "malformed JSON" in recs[8]["reason"]
    assert recs["short"]["status"] == "invalid-input" and "81 cells" in recs["short"]["reason"]
    assert "digit 1 appears twice in row 1" in recs["clash"]["reason"]
    assert "no problem" in recs["nokey"]["reason"]
    dup = recs["p0@line12"]
    assert dup["status"] == "invalid-input" and "duplicate id 'p0'" in dup["reason"]
    assert recs[13]["line"] == 13 and recs[13]["status"] in ("solved", "unsolved")
    assert recs[15]["line"] == 15
    puzzles = {f"p{i}": p for i, p in enumerate(easy_puzzles)}
    assert any(recs[k]["status"] == "solved" for k in puzzles)
    for k, p in puzzles.items():  # certified: a solved record is the puzzle's unique solution
        if recs[k]["status"] == "solved":
            assert recs[k]["solution"] == "".join(map(str, solve_exact(task.parse(p))))
    for r in recs.values():
        assert r["model"] == str(model_dir)
        assert r["settings"]["solver"]["max_passes"] == 48 and r["settings"]["batch_size"] == 4
        if r["status"] == "solved":  # certified: the validator passed
            assert r["violations"] == [] and "." not in r["solution"]  # passes may be 0: propagation alone
    assert s.counts["invalid-input"] == 5 and s.total == 14 and s.processed == 14
    assert s.counts["solved"] + s.counts["unsolved"] == 9
    on_disk = json.loads(summary_path(out).read_text())
    assert on_disk["counts"] == s.counts and on_disk["passes"]["solved"]["count"] == s.counts["solved"]


def test_retries_stay_within_the_item_pass_budget(model_dir, tmp_path):
    hard = load_task("sudoku").generate(2, seed=5, grade="hard")
    inp = puzzle_file(tmp_path / "in.jsonl", [p for p, _ in hard], 2)
    out = tmp_path / "out.jsonl"
    # the bare random model never solves a hard puzzle: every attempt is spent
    run_batch("sudoku", inp, out, model=model_dir, budget=Budget(retries=5, max_passes=10), max_passes=4,
              model_only=True)
    for r in records(out):
        assert r["status"] == "unsolved" and r["violations"] and r["messages"]
        assert r["passes"] <= 10 and r["attempts"] == 3  # 4 + 4 + 2 passes
    with pytest.raises(ConfigError, match="retries"):
        Budget(retries=-1)


def test_rerun_skips_done_ids_and_redoes_a_torn_last_line(model_dir, easy_puzzles, tmp_path):
    inp = puzzle_file(tmp_path / "in.jsonl", easy_puzzles, 10)
    out = tmp_path / "out.jsonl"
    run_batch("sudoku", inp, out, model=model_dir, batch_size=4)
    first = out.read_bytes()
    lines = first.splitlines(keepends=True)
    torn_id = json.loads(lines[-1])["id"]
    # drop two whole records and tear the last one, as a kill mid-write leaves the file
    out.write_bytes(b"".join(lines[:-3]) + lines[-1][:25])
    s = run_batch("sudoku", inp, out, model=model_dir, batch_size=4)
    ids = [r["id"] for r in records(out)]
    assert Counter(ids) == Counter(f"q{i}" for i in range(10))
    assert torn_id in ids and s.processed == 3 and s.skipped == 7
    assert run_batch("sudoku", inp, out, model=model_dir).processed == 0  # nothing left to do


def test_a_bad_line_inside_the_output_is_refused_not_overwritten(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 1}\ngarbage\n{"id": 2}\n')
    with pytest.raises(ConfigError, match="line 2"):
        scan_output(out)
    assert out.read_text().count("\n") == 3


def test_a_failing_batch_is_isolated_and_the_job_goes_on(model_dir, easy_puzzles, tmp_path):
    poison = easy_puzzles[2]

    class Flaky(Solver):
        def run(self, canvas, problems=None):
            if poison in (problems or []):
                raise RuntimeError("device fell over")
            return super().run(canvas, problems)

    good = make_solver("sudoku", model_dir)
    solver = Flaky(good.task, good.model, good.noise, good.config)
    inp = puzzle_file(tmp_path / "in.jsonl", easy_puzzles, 7)
    out = tmp_path / "out.jsonl"
    s = run_batch("sudoku", inp, out, solver=solver, batch_size=8)
    recs = {r["id"]: r for r in records(out)}
    assert recs["q2"]["status"] == "error" and recs["q2"]["reason"] == "RuntimeError: device fell over"
    assert all(recs[f"q{i}"]["status"] in ("solved", "unsolved") for i in range(7) if i != 2)
    assert s.counts["error"] == 1 and s.total == 7


def test_input_and_output_must_differ_and_input_must_exist(model_dir, tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text("{}\n")
    with pytest.raises(ConfigError, match="same file"):
        run_batch("sudoku", f, f, model=model_dir)
    with pytest.raises(ConfigError, match="does not exist"):
        run_batch("sudoku", tmp_path / "missing.jsonl", tmp_path / "o.jsonl", model=model_dir)


def test_ranks_take_disjoint_shards_and_merge_gives_each_id_once(model_dir, easy_puzzles, tmp_path,
                                                                monkeypatch, capsys):
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    inp = puzzle_file(tmp_path / "in.jsonl", easy_puzzles, 12)
    out = tmp_path / "out.jsonl"
    for rank in (0, 1):  # no process group: each rank writes its part, no automatic merge
        run_batch("sudoku", inp, out, model=model_dir, rank=rank, world_size=2)
    parts = find_parts(out)
    ids = [[r["id"] for r in records(p)] for p in parts]
    assert not set(ids[0]) & set(ids[1])
    assert all(shard_of(i, 2) == k for k in (0, 1) for i in ids[k])
    assert not out.exists()
    assert main(["batch", "merge", str(out)]) == 0
    assert "12 records" in capsys.readouterr().out
    assert Counter(r["id"] for r in records(out)) == Counter(f"q{i}" for i in range(12))
    assert not part_path(out, 0, 2).exists() and json.loads(summary_path(out).read_text())["merged"]
    with pytest.raises(ConfigError, match="no rank parts"):
        merge_outputs(out)


def test_cli_batch_writes_results_and_summary(model_dir, easy_puzzles, tmp_path, capsys):
    inp = puzzle_file(tmp_path / "in.jsonl", easy_puzzles, 3)
    out = tmp_path / "out.jsonl"
    rc = main(["batch", "sudoku", "--input", str(inp), "--output", str(out), "--model", str(model_dir),
               "--retries", "0", "--max-passes", "40", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["total"] == 3 and summary["processed"] == 3
    assert records(out)[0]["settings"]["budget"]["retries"] == 0
    assert main(["batch", "sudoku", "--input", str(inp)]) == 2
    assert "--output" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(env: dict[str, str], args: tuple, kwargs: dict) -> None:
    """A forked child: a fresh rank with the parent's imports (no interpreter start-up)."""
    torch.set_num_threads(1)
    os.environ.update(env)
    run_batch(*args, **kwargs)


def _fork(env: dict[str, str], *args, **kwargs) -> multiprocessing.Process:
    proc = multiprocessing.get_context("fork").Process(target=_rank_main, args=(env, args, kwargs))
    proc.start()
    return proc


def test_two_gloo_ranks_merge_automatically_on_rank_0(model_dir, easy_puzzles, tmp_path):
    inp = puzzle_file(tmp_path / "in.jsonl", easy_puzzles, 10)
    out = tmp_path / "out.jsonl"
    port = str(_free_port())
    procs = [_fork({"RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r), "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": port}, "sudoku", inp, out, model=model_dir) for r in (0, 1)]
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert Counter(r["id"] for r in records(out)) == Counter(f"q{i}" for i in range(10))
    merged = json.loads(summary_path(out).read_text())
    assert merged["merged"] and merged["world_size"] == 2 and merged["total"] == 10
    assert merged["processed"] == 10
    assert not list(tmp_path.glob("out.rank-*"))


def test_sigkill_mid_job_then_resume_gives_every_id_exactly_once(model_dir, easy_puzzles, tmp_path):
    n = 120
    inp = puzzle_file(tmp_path / "in.jsonl", easy_puzzles, n)
    out = tmp_path / "out.jsonl"
    quick = {"model": model_dir, "budget": Budget(retries=0), "max_passes": 16}
    proc = _fork({}, "sudoku", inp, out, batch_size=2, **quick)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.is_alive():
            if out.exists() and out.stat().st_size > 0:
                break
            time.sleep(0.01)
        assert proc.is_alive(), "the job ended before it could be killed"
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    written = len(scan_output(out, repair=False))
    assert 0 < written < n
    s = run_batch("sudoku", inp, out, batch_size=64, **quick)
    assert Counter(r["id"] for r in records(out)) == Counter(f"q{i}" for i in range(n))
    assert s.total == n and s.processed == n - written
