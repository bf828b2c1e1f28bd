"""The inputs issue #17 saw crash the CLI: each is now one ``constrained: error:`` line naming the
problem, and exit 2 (no traceback); the long inline spec of the README solves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import EASY, tiny_model
from constrained.engine.noise import make_noise

import constrained.api as api
from constrained import ConfigError, load_task
from constrained.cli import main
from constrained.devices import check_device


@pytest.fixture
def tiny_hub(monkeypatch):
    cache = {}

    def load(task, model="default", **kw):
        cache.setdefault(task.name, tiny_model(task))
        return cache[task.name], make_noise("mask", task.vocab.mask_id)
    monkeypatch.setattr(api, "load_denoiser", load)


def run(capsys, *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, err


def one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("constrained: error:")]
    assert len(lines) == 1, err
    return lines[0]


README_SPEC = {"length": [12, 20], "motif": {"4": "RGD", "10": "[KR]"}, "allowed": {"1-3": "KRH", "15": "^P"},
               "exclude": "C", "windows": {"mw": [1500, 2300], "charge": [2, 6], "logp": [-9, -2],
                                           "tpsa": [600, 1000]},
               "max_run": 3, "forbidden": ["N[^P][ST]"], "label": "amp", "name": "my design"}


def test_a_long_inline_problem_is_a_problem_not_a_file_name(capsys, tiny_hub):
    spec = json.dumps(README_SPEC)
    assert len(spec) > 255 and "/" not in spec
    rc, err = run(capsys, "solve", "peptide", spec, "--max-passes", "2")
    assert rc in (0, 1), err  # it was read and solved (the tiny model need not succeed)
    rc, err = run(capsys, "solve", "sudoku", "5" * 300)
    assert rc == 2 and "81 cells" in one_error(err)


@pytest.mark.parametrize("task,problem,words", [
    ("peptide", '{"length": 12, "forbidden": 5}', "forbidden must be"),
    ("peptide", '{"length": 12, "windows": 5}', "windows must map"),
    ("graph-gen", '{"n": 5, "constraints": 5}', "'constraints' must be a list"),
    ("graph-coloring", '{"nodes": 5, "edges": [[0, 1]], "k": 2}', "'nodes' must be a list"),
    ("graph-coloring", '{"edges": [[0, 1]], "k": 2, "precolored": 5}', "'precolored' must map"),
    ("code-infill", "def f():\n    <FILL>\udcff\n", "lone surrogate"),
    ("peptide", '{"length": 12, "windows": {"mw": [NaN, 2000]}}', "NaN"),
    ("peptide", '{"length": 12, "windows": {"mw": [0, 1e400]}}', "non-finite"),
])
def test_bad_spec_fields_are_one_line_exit_2(capsys, tiny_hub, task, problem, words):
    rc, err = run(capsys, "solve", task, problem)
    assert rc == 2 and words in one_error(err)


@pytest.mark.parametrize("device,words", [("foo", "unknown device 'foo'"), ("cuda:0", "cuda"),
                                          ("meta", "not supported")])
def test_unknown_or_missing_devices_are_refused_before_any_model_loads(capsys, device, words, monkeypatch):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")

    def boom(*a, **k):
        raise AssertionError("the model was loaded before the device was checked")
    monkeypatch.setattr(api, "load_denoiser", boom)
    rc, err = run(capsys, "solve", "sudoku", EASY, "--device", device)
    assert rc == 2 and words in one_error(err)
    with pytest.raises(ConfigError):
        check_device(device)


def test_trace_out_on_a_directory_is_refused(capsys, tiny_hub, tmp_path):
    rc, err = run(capsys, "trace", "sudoku", EASY, "--out", str(tmp_path))
    assert rc == 2 and str(tmp_path) in one_error(err)


def test_finetune_with_negative_steps_fails_and_leaves_no_folder(capsys, tmp_path):
    out = tmp_path / "run"
    rc, err = run(capsys, "finetune", "sudoku", "--steps", "-1", "--out", str(out))
    assert rc == 2 and "train.max_steps = -1 is out of range" in one_error(err)
    assert not out.exists()


@pytest.mark.parametrize("task", ["sudoku", "peptide", "code-infill", "graph-coloring"])
def test_a_non_utf8_input_file_is_named(capsys, tmp_path, task):
    f = tmp_path / "input.txt"
    f.write_bytes(b"\xff\xfe\x00not utf-8 \x81")
    rc, err = run(capsys, "solve", task, str(f), "--k", "3") if task == "graph-coloring" else \
        run(capsys, "solve", task, str(f))
    line = one_error(err)
    assert rc == 2 and str(f) in line and "UTF-8" in line


def test_code_keeps_crlf_and_a_bom_from_file_to_output(capsys, tmp_path):
    task = load_task("code-infill")
    src = "\ufeffdef add(a, b):\r\n    <FILL>\r\n\r\nprint(add(1, 2))\r\n"
    f = tmp_path / "m.py"
    f.write_bytes(src.encode("utf-8"))
    (problem,) = task.read_problems(f)
    canvas = task.encode([problem])
    ids = task.encode_hole("x = a + b\n    return x")
    tokens = torch.zeros(1, task.hole_tokens, dtype=torch.long)
    tokens[0, : len(ids)] = torch.tensor(ids)
    assert task.validate(canvas, tokens).ok.tolist() == [True]  # the BOM does not break compile()
    (out,) = task.decode(canvas, tokens)
    assert str(out) == "\ufeffdef add(a, b):\r\n    x = a + b\r\n    return x\r\n\r\nprint(add(1, 2))\r\n"
    assert Path(f).read_bytes().startswith(b"\xef\xbb\xbf")
