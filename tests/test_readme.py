"""The README's commands and Python snippets run as written, so the README cannot drift from the code.

- every ``constrained ...`` line (also inside ``torchrun ... -m constrained.cli ...``) parses, names
  a real task and only options that task or command takes;
- the ``solve`` / ``trace`` / ``batch`` / ``tasks`` lines run for real with the shipped models in a
  temporary folder that holds the files the README names (``spec.json`` is the README's own spec),
  with the solver's budget capped at a few passes (they must not fail on their input: exit 0 or 1);
- every Python block runs on its own, in a temporary folder, with the same cap and smaller sizes
  (``generate(100`` -> ``generate(3`` ...); a ``# literal`` comment after an expression of the API
  example is compared with the value (``'534678912...'`` as a prefix);
- nothing is left in the repository: every command and block runs in ``tmp_path``.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import shlex
from pathlib import Path

import pytest
import torch

from constrained import api
from constrained.cli import build_parser, main
from constrained.cli_options import checked_task_options
from constrained.registry import describe_task

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PASSES = 4  # the solver's budget for every run here

#: smaller sizes for the Python blocks: (block's first line, text, replacement); each must apply
SMALLER = [
    ("task.generate(100,", "task.generate(100,", "task.generate(3,"),
    ("max_new_tokens=1024", "max_new_tokens=1024", "max_new_tokens=32"),
]
#: Python blocks that cannot run here (a hub checkpoint, a GPU), by a phrase in them: only their imports run
NEEDS_GPU_AND_HUB = ("google/diffusiongemma", "GSAI-ML/LLaDA", "path/to/saved-")


def blocks() -> list[tuple[str, str, int]]:
    """(language, body, line) of every fenced block."""
    return [(m.group(1), m.group(2), README[: m.start()].count("\n") + 1)
            for m in re.finditer(r"```(\w*)\n(.*?)```", README, re.S)]


def shell_lines() -> list[tuple[int, list[str]]]:
    """(README line, argv) of every command in bash blocks and untagged command lists."""
    out = []
    for lang, body, line in blocks():
        if lang not in ("bash", ""):
            continue
        text = body.replace("\\\n", " ")
        for k, raw in enumerate(text.splitlines()):
            try:
                argv = shlex.split(raw, comments=True)
            except ValueError:
                continue
            if argv and argv[0] in ("constrained", "python", "pip", "torchrun", "accelerate"):
                out.append((line + k + 1, argv))
    return out


def cli_argv(argv: list[str]) -> list[str] | None:
    """The arguments of ``constrained`` in a README command, or None when it runs something else."""
    if "&&" in argv:
        return cli_argv(argv[argv.index("&&") + 1:])
    if argv[0] == "constrained":
        return argv[1:]
    if "-m" in argv and argv[argv.index("-m") + 1] == "constrained.cli":
        return argv[argv.index("-m") + 2:]
    return None


CLI = [(n, a) for n, argv in shell_lines() if (a := cli_argv(argv)) is not None]


def test_the_readme_has_commands_and_snippets():
    assert len(CLI) >= 25 and sum(lang == "python" for lang, _, _ in blocks()) >= 7
    assert {a[0] for _, a in CLI} >= {"tasks", "solve", "trace", "batch", "finetune"}


@pytest.mark.parametrize("line,argv", CLI, ids=[f"L{n}" for n, _ in CLI])
def test_every_command_line_parses_with_options_that_exist(line, argv, capsys):
    argv = [a[1:-1] if a.startswith("[") and a.endswith("]") else a for a in argv]  # [--json]: optional
    if "--help" in argv:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        return
    args, extra = build_parser().parse_known_args(argv)
    if args.command in ("solve", "trace", "batch") and args.task != "merge":
        args.task_args = extra
        checked_task_options(args)  # raises naming an option the task does not take
    elif args.command == "batch":  # batch merge OUT
        assert len(extra) <= 1 and not any(x.startswith("-") for x in extra), f"README line {line}: {extra}"
    else:
        assert not extra or args.command == "bench", f"README line {line}: unknown {extra}"
        if getattr(args, "task", None) and args.command in ("finetune", "tasks"):
            describe_task(args.task)


# --- running them ---------------------------------------------------------------------------------
CALC = '''"""A small calculator."""

def add(a: float, b: float) -> float:
    return a + b


def sub(a: float, b: float) -> float:
    return a - b


def mean(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total / len(values)
'''


def readme_json(starts: str) -> str:
    return next(body for lang, body, _ in blocks() if lang == "json" and body.lstrip().startswith(starts))


def inputs(folder: Path, task: str | None) -> None:
    """The files the README's commands and snippets name."""
    (folder / "spec.json").write_text(readme_json('{"length"'))
    record = readme_json('{"id"').strip()
    (folder / "problems.jsonl").write_text(record + "\n" + record.replace('"p1"', '"p2"') + "\n")
    (folder / "graph.json").write_text(json.dumps({"edges": [[0, 1], [1, 2], [2, 0], [2, 3]]}))
    (folder / "edges.txt").write_text("0 1\n1 2\n2 0\n2 3\n")
    (folder / "G.col").write_text("c a triangle and a pendant\np edge 4 4\ne 1 2\ne 2 3\ne 3 1\ne 3 4\n")
    infill = task == "code-infill"
    (folder / "calc.py").write_text("def add(a, b):\n    return <FILL>\n" if infill else CALC)
    (folder / "test_calc.py").write_text("from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")


@pytest.fixture
def capped(monkeypatch):
    """Every solver made through the API (the CLI, solve, run_batch) gets at most PASSES passes."""
    make = api.make_config

    def make_config(config=None, **options):
        cfg = make(config, **options)
        return dataclasses.replace(cfg, max_passes=min(cfg.max_passes, PASSES))

    monkeypatch.setattr(api, "make_config", make_config)


RUNNABLE = [(n, a) for n, a in CLI if a[0] in ("tasks", "solve", "trace") or (a[0] == "batch" and a[1] != "merge")]


@pytest.mark.parametrize("line,argv", RUNNABLE, ids=[f"L{n}" for n, _ in RUNNABLE])
def test_commands_run_on_the_files_they_name(line, argv, capped, tmp_path, monkeypatch, capsys):
    argv = [a for a in argv if not (a.startswith("[") and a.endswith("]"))]
    if any(a in ("PUZZLE|FILE", "PUZZLE", "DIR", "IN.jsonl") for a in argv):
        argv = [{"PUZZLE|FILE": EASY, "PUZZLE": EASY}.get(a, a) for a in argv]
        if "IN.jsonl" in argv:
            argv = [{"IN.jsonl": "problems.jsonl", "OUT.jsonl": "out.jsonl"}.get(a, a) for a in argv]
    if "cuda" in argv and not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    monkeypatch.chdir(tmp_path)
    inputs(tmp_path, argv[1] if len(argv) > 1 else None)
    rc = main(argv)
    out = capsys.readouterr()
    assert rc in (0, 1), f"README line {line}: `constrained {' '.join(argv)}` exited {rc}: {out.err}"
    assert "Traceback" not in out.err


EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
PYTHON = [(line, body) for lang, body, line in blocks() if lang == "python"]


def _matches(actual, expected) -> bool:
    """``...`` matches anything, ``'abc...'`` any string starting with ``abc``."""
    if expected is Ellipsis:
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and set(actual) == set(expected) and all(
            _matches(actual[k], v) for k, v in expected.items())
    if isinstance(expected, str) and expected.endswith("..."):
        return str(actual).startswith(expected[:-3])
    if isinstance(expected, (tuple, list)) and isinstance(actual, (tuple, list)):
        return len(actual) == len(expected) and all(_matches(a, e) for a, e in zip(actual, expected))
    return actual == expected


def run_block(body: str, namespace: dict) -> None:
    """Run a block statement by statement; an expression whose comment is a Python literal must
    equal it (the API example's documented values)."""
    tree = ast.parse(body)
    lines = body.splitlines()
    for node in tree.body:
        code = compile(ast.Module([node], []), "<README>", "exec")
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), "<README>", "eval"), namespace)
            comment = lines[node.end_lineno - 1].partition("#")[2].strip().split("  ")[0]  # "LITERAL  remark"
            try:
                expected = ast.literal_eval(comment)
            except (ValueError, SyntaxError):
                continue
            assert _matches(value, expected), f"README says {comment}, the code gives {value!r}"
        else:
            exec(code, namespace)


@pytest.mark.parametrize("line,body", PYTHON, ids=[f"L{n}" for n, _ in PYTHON])
def test_python_snippets_run(line, body, capped, tmp_path, monkeypatch, capsys):
    for first, old, new in SMALLER:
        if first in body:
            body = body.replace(old, new)
    if any(p in body for p in NEEDS_GPU_AND_HUB):  # only the imports: the checkpoint needs a hub and a GPU
        body = "\n".join(ln for ln in body.splitlines() if ln.startswith(("import ", "from ")))
    monkeypatch.chdir(ROOT if "constrained/models/" in body else tmp_path)
    inputs(tmp_path, None)
    before = sorted(p.name for p in ROOT.iterdir())
    run_block(body, {"__name__": "__readme__"})
    assert sorted(p.name for p in ROOT.iterdir()) == before  # nothing left in the repository


def test_the_trace_example_needs_several_passes():
    """The README's trace example is there to show passes: the shipped model must need some."""
    from constrained import solve

    block = next(body for lang, body, _ in blocks() if lang == "bash" and body.startswith("constrained trace sudoku"))
    puzzle = block.split()[3]
    res = solve("sudoku", puzzle)
    assert res.valid and res.passes >= 3, f"the trace example takes {res.passes} passes; pick a harder puzzle"


def test_smaller_sizes_still_apply():
    text = "\n".join(body for _, body in PYTHON)
    for first, old, _ in SMALLER:
        assert first in text and old in text, f"README no longer holds {old!r}: update SMALLER"


def test_the_scripts_and_install_lines_exist():
    """`python examples/X.py` names a script (tests/test_examples.py runs each); the README's install
    lines use the extras and the torch pin CI uses."""
    lines = [argv for _, argv in shell_lines()]
    scripts = [a[1] for a in lines if a[0] == "python" and a[1].endswith(".py")]
    assert scripts and all((ROOT / s).is_file() for s in scripts)
    ci = (ROOT / ".ci" / "run").read_text()
    for argv in lines:
        if argv[0] == "pip":
            pin = next(a for a in argv if a.startswith("torch=="))
            assert pin in ci
            target = argv[argv.index("-e") + 1]
            extra = re.findall(r"\[(\w+)\]", target)
            assert all(f"\n{e} = [" in (ROOT / "pyproject.toml").read_text() for e in extra)
