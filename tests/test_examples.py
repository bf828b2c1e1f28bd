"""Every script in examples/ runs, with tiny random models and small sizes, so none can rot.

Each runs in this process (``runpy``, as ``__main__``) with its own command-line arguments;
a new example must be added to RUNS, or the first test fails.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
from conftest import tiny_model
from constrained.tasks.sudoku import Sudoku

from constrained import load_task
from constrained.shipped import MODELS_DIR

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("example-models")
    out = {}
    for name in ("sudoku", "sudoku-x", "peptide"):
        out[name] = root / name
        tiny_model(load_task(name)).save_pretrained(out[name])
    return out


# script -> (arguments, given the model folders and a scratch folder; words its output must hold)
RUNS = {
    "quickstart.py": (lambda m, tmp: ["--model", str(m["sudoku"]), "--n", "2", "--max-passes", "8"],
                      ["valid=", "batch: ", "bare model: "]),
    "trace_solve.py": (lambda m, tmp: ["--model", str(m["sudoku"]), "--out", str(tmp / "trace.html")],
                       ["pass  1:", "replay written to"]),
    "finetune_lora.py": (lambda m, tmp: ["--base", str(m["sudoku"]), "--out", str(tmp / "lora"),
                                         "--steps", "2", "--batch-size", "4", "--n", "1"],
                         ["adapter written to", "sudoku-x with the adapter: "]),
    "sudoku.py": (lambda m, tmp: ["--model", str(m["sudoku"]), "--n", "1", "--max-passes", "8"],
                  ["easy ", "hard ", "expert ", "------+-------+------"]),
    "sudoku_x.py": (lambda m, tmp: ["--model", str(m["sudoku-x"]), "--n", "1"],
                    ["Sudoku-X: ", "diagonals: "]),
    "batch_job.py": (lambda m, tmp: ["--model", str(m["sudoku"]), "--n", "3", "--dir", str(tmp),
                                     "--max-passes", "8"],
                     ["rerun: 0 processed, 4 already done", "broken: invalid-input"]),
    # written for the shipped models (no --model option): run when they are there
    "graphs.py": (lambda m, tmp: [], ["3-colouring valid:", "valid:"]),
    "peptide.py": (lambda m, tmp: ["--model", str(m["peptide"]), "--n", "1"],
                   [">design", "designs meet the spec"]),
}

NEEDS_SHIPPED = {"graphs.py": ["graph-coloring", "graph-gen"]}


def test_every_example_is_exercised():
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(RUNS)


def test_task_examples_cover_only_registered_tasks():
    from constrained import list_tasks

    per_task = {"sudoku.py": "sudoku", "sudoku_x.py": "sudoku-x", "peptide.py": "peptide"}
    assert set(per_task.values()) <= set(list_tasks())


@pytest.mark.parametrize("script", sorted(RUNS))
def test_example_runs(script, models, tmp_path, monkeypatch, capsys):
    args, words = RUNS[script]
    missing = [n for n in NEEDS_SHIPPED.get(script, []) if not (MODELS_DIR / n / "config.json").exists()]
    if missing:
        pytest.skip(f"{script} runs on the shipped models; missing: {', '.join(missing)}")
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / script), *args(models, tmp_path)])
    monkeypatch.chdir(tmp_path)
    if script == "finetune_lora.py":  # training data: a pool of 8 seed grids, not 512 (~10 s of exact search)
        pool = Sudoku._seed_pool
        monkeypatch.setattr(Sudoku, "_seed_pool", lambda self, rng, size=512: pool(self, rng, size=8))
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    out = capsys.readouterr().out
    for w in words:
        assert w in out, f"{script} printed no {w!r}:\n{out}"
    if script == "trace_solve.py":
        assert (tmp_path / "trace.html").read_text().startswith("<!DOCTYPE html>")
    if script == "finetune_lora.py":
        assert (tmp_path / "lora" / "adapter_model.safetensors").exists()
