"""The first five minutes: what the command imports before it answers, what it says on stderr,
how it finds and checks options, and how it reads its input. (Times are in BENCHMARKS.md,
*Start-up*: `python benchmarks/startup.py`; here only what must hold on any machine.)"""

from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import sys

import pytest
import torch
from conftest import EASY

from constrained import ConfigError, load_task, solve
from constrained.cli import build_parser, configure_threads, looks_like_path, main
from constrained.registry import describe_task, list_tasks, task_factory

X_PUZZLE = "..259.1..34...1......4.62..71..4..255....78.46....2.71...1...3893......2.682....."
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS",)}

PROBE = """
import sys
from constrained.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:  # argparse's --help
    rc = e.code
print("RESULT", rc, "torch" in sys.modules, "transformers" in sys.modules, file=sys.stderr)
"""


def probe(*args: str) -> tuple[int, bool, bool, str]:
    """(exit status, torch imported, transformers imported, stderr) of one fresh command."""
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=ENV, timeout=300)
    *said, last = r.stderr.strip().splitlines()
    tag, rc, t, tf = last.split()
    assert tag == "RESULT", r.stderr
    return int(rc), t == "True", tf == "True", "\n".join(said)


@pytest.mark.parametrize("args,rc", [
    (["--help"], 0),
    (["tasks"], 0),
    (["tasks", "peptide"], 0),
    (["solve", "--help"], 0),
    (["solve", "sudok", EASY], 2),
    (["solve", "sudoku", EASY, "--max-pases", "3"], 2),
    (["solve", "graph-coloring", '{"edges": [[0, 1]]}', "--kk", "3"], 2),
    (["solve", "sudoku", "puzzles/missing.txt"], 2),
    (["solv", "sudoku", EASY], 2),
])
def test_help_tasks_and_command_line_errors_import_no_torch(args, rc):
    got, uses_torch, uses_transformers, err = probe(*args)
    assert got == rc, err
    assert not uses_torch and not uses_transformers, f"{args} imported torch/transformers"
    if rc == 2:
        assert "constrained: error:" in err and "Traceback" not in err


@pytest.mark.parametrize("task,puzzle,words", [
    ("sudoku", "53..7....6..195....9", "needs 81 cells, got 20"),
    ("sudoku", "55" + EASY[2:], "digit 5 appears twice in row 1"),
    ("sudoku-x", "1" + "." * 79 + "1", "digit 1 appears twice in main diagonal"),
])
def test_a_mistyped_sudoku_is_refused_before_torch_loads(task, puzzle, words):
    rc, uses_torch, uses_transformers, err = probe("solve", task, puzzle)
    assert rc == 2 and words in err, err
    assert not uses_torch and not uses_transformers


def test_other_bad_problems_are_refused_before_transformers_loads(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("53..7....6..195....9\n")  # a file goes through the task's own reader (torch)
    rc, uses_torch, uses_transformers, err = probe("solve", "sudoku", str(bad))
    assert rc == 2 and "needs 81 cells, got 20" in err
    assert not uses_transformers
    rc, _, uses_transformers, err = probe("solve", "peptide", '{"length": [5, 3]}')
    assert rc == 2 and "Traceback" not in err and not uses_transformers


@pytest.mark.parametrize("args", [["sudoku", EASY], ["sudoku-x", X_PUZZLE]])
def test_a_successful_solve_writes_nothing_on_stderr(args):
    """No transformers progress bar, no transformers / peft FutureWarning (the shipped Sudoku-X
    model is a peft adapter), no progress bar when stderr is not a terminal."""
    r = subprocess.run([sys.executable, "-m", "constrained.cli", "solve", *args], capture_output=True,
                       text=True, env={k: v for k, v in ENV.items() if k != "OMP_NUM_THREADS"}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == []
    assert "valid" in r.stdout


def test_threads_default_to_one_unless_set(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        torch.set_num_threads(2)
        configure_threads(None)
        assert torch.get_num_threads() == 1
        configure_threads(2)
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        configure_threads(None)  # the user's setting stands
        assert torch.get_num_threads() == 2
        with pytest.raises(ConfigError, match="--threads must be >= 1"):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)


# --- finding options -----------------------------------------------------------------------------
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    act = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(act.choices)


def test_help_lists_every_command_and_every_option_has_help():
    parser = build_parser()
    subs = _subparsers(parser)
    assert set(subs) == {"tasks", "solve", "trace", "batch", "finetune", "bench"}
    text = parser.format_help()
    assert all(name in text for name in subs)
    for name, sp in subs.items():
        for act in sp._actions:
            if isinstance(act, argparse._HelpAction):
                continue
            assert act.help, f"constrained {name}: {act.option_strings or act.dest} has no help text"


def test_solve_help_names_every_tasks_options():
    text = _subparsers(build_parser())["solve"].format_help()
    for flag in ("--k", "--n", "--diff", "--tests", "--lines", "--span"):
        assert flag in text
    assert "constrained tasks TASK" in text


@pytest.mark.parametrize("name", list_tasks())
def test_task_options_are_read_from_the_tasks_own_signature(name):
    """`constrained tasks TASK` reads the source; it must agree with the class itself."""
    info = describe_task(name)
    sig = inspect.signature(task_factory(name))
    params = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert [o.name for o in info.options] == [p.name for p in params]
    for o, p in zip(info.options, params):
        assert (eval(o.default) if o.default else inspect.Parameter.empty) == p.default, (name, o.name)
        assert o.doc, f"{name}: option {o.name} has no Args: entry in its docstring"
    assert info.summary and info.input and info.example.startswith(f"constrained solve {name} ")


def test_tasks_task_prints_options_defaults_input_and_example(capsys):
    assert main(["tasks", "graph-coloring"]) == 0
    out = capsys.readouterr().out
    assert "--k" in out and "(default 3)" in out and "input:" in out and "example:" in out
    assert "constrained solve graph-coloring" in out


def test_mistyped_options_name_the_closest_valid_one(capsys):
    assert main(["solve", "sudoku", EASY, "--max-pases", "3"]) == 2
    assert "unknown option --max-pases (did you mean '--max-passes'?)" in capsys.readouterr().err
    assert main(["solve", "peptide", '{"length": 8}', "--nn", "2"]) == 2
    assert "did you mean '--n'?" in capsys.readouterr().err
    assert main(["finetune", "sudoku", "--stpes", "3"]) == 2
    assert "did you mean '--steps'?" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"has no option 'kk' \(did you mean 'k'\?\)"):
        load_task("graph-coloring", kk=3)
    with pytest.raises(ConfigError, match=r"did you mean 'max_passes'\?"):
        solve("sudoku", EASY, max_pases=3)
    with pytest.raises(ConfigError, match=r"unknown task 'sudok' \(did you mean 'sudoku'\?\)"):
        load_task("sudok")


# --- reading the input ---------------------------------------------------------------------------
def test_a_missing_file_is_named_not_parsed_as_a_puzzle(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for arg in ("puzzles.txt", "data/puzzles", "./p"):
        assert main(["solve", "sudoku", arg]) == 2
        err = capsys.readouterr().err
        assert f"{arg}: no such file" in err and "81 cells" not in err
    (tmp_path / "folder").mkdir()
    assert main(["solve", "sudoku", "folder"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert looks_like_path("spec.json") and not looks_like_path(EASY) and not looks_like_path('{"length": 8}')


def test_inline_peptide_spec_takes_n_and_its_name_heads_the_fasta(capsys):
    spec = '{"length": [8, 10], "motif": {"2": "RGD"}, "name": "my rgd"}'
    rc = main(["solve", "peptide", spec, "--n", "2", "--max-passes", "32"])
    out = capsys.readouterr().out
    assert rc in (0, 1)
    assert out.count(">my_rgd length=") + out.count(">my_rgd incomplete") == 2
