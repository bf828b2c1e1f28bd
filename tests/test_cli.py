import json
import subprocess
import sys

import pytest
from conftest import EASY, EASY_SOLUTION, tiny_model

from constrained.cli import main
from constrained.cli_options import task_options


@pytest.fixture
def model_dir(sudoku_task, tmp_path):
    tiny_model(sudoku_task).save_pretrained(tmp_path / "m")
    return str(tmp_path / "m")


def test_tasks_lists_sudoku(capsys):
    assert main(["tasks"]) == 0
    assert "sudoku" in capsys.readouterr().out


def test_solve_prints_grid_and_validity(model_dir, capsys):
    assert main(["solve", "sudoku", EASY, "--model", model_dir]) == 0
    out = capsys.readouterr().out
    assert "solved (validator passed); passes:" in out and "5 3 4 | 6 7 8 | 9 1 2" in out


def test_solve_file_of_puzzles_as_json(model_dir, tmp_path, capsys):
    f = tmp_path / "puzzles.txt"
    f.write_text(f"{EASY}\n# a comment\n{EASY}\n")
    assert main(["solve", "sudoku", str(f), "--model", model_dir, "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["solution"] for r in lines] == [EASY_SOLUTION, EASY_SOLUTION]


def test_model_only_unsolved_exits_1(model_dir, capsys):
    rc = main(["solve", "sudoku", EASY, "--model", model_dir, "--model-only"])
    out = capsys.readouterr().out
    assert rc == (0 if "solved (validator passed)" in out else 1)
    if rc:
        assert "NOT solved" in out


def test_bad_puzzle_is_a_clear_error_not_a_traceback(model_dir, capsys):
    assert main(["solve", "sudoku", "55" + EASY[2:], "--model", model_dir]) == 2
    err = capsys.readouterr().err
    assert "digit 5 appears twice in row 1" in err and "Traceback" not in err


def test_unknown_task_and_unknown_task_option_are_named(model_dir, capsys):
    assert main(["solve", "kakuro", EASY]) == 2
    assert "unknown task 'kakuro'" in capsys.readouterr().err
    assert main(["solve", "sudoku", EASY, "--model", model_dir, "--k", "3"]) == 2
    assert "unknown option --k; task 'sudoku' takes no task options" in capsys.readouterr().err


def test_task_options_parse_flags():
    assert task_options(["--k", "3", "--name=x", "--draw-all"]) == {"k": 3, "name": "x", "draw_all": True}


def test_finetune_rejects_unknown_recipe_key_before_training(tmp_path, capsys):
    assert main(["finetune", "sudoku", "--out", str(tmp_path), "--set", "train.epochz=3"]) == 2
    assert "unknown key train.epochz" in capsys.readouterr().err


def test_finetune_trains_saves_card_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "constrained.cli", "finetune", "sudoku", "--out", str(out),
            "--set", "model.hidden_size=16", "--set", "model.num_hidden_layers=1",
            "--set", "model.num_attention_heads=2", "--set", "model.intermediate_size=16",
            "--steps", "4", "--batch-size", "4", "--set", "train.save_steps=2",
            "--set", "train.logging_steps=1", "--set", "eval.size=2", "--set", "eval.steps=2",
            "--set", "eval.grade=easy"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for f in ("config.json", "model.safetensors", "README.md", "loss.png", "training_log.json"):
        assert (out / f).exists(), f
    card = (out / "README.md").read_text()
    assert "constrained finetune sudoku" in card and "solve rate" in card
    # a second run with more steps resumes from the last checkpoint instead of starting over
    r = subprocess.run(args[:args.index("--steps") + 1] + ["6"] + args[args.index("--steps") + 2:],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming from" in r.stdout + r.stderr
