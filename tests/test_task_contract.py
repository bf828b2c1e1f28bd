"""The task contract: every registered task (``list_tasks()``, the entry-point group included)
meets the same clauses on a problem of its own ``generate(n, seed)``:

- the known solution, written as tokens, decodes back to itself (encode -> decode round-trips),
  keeps the problem's fixed positions and lies in ``canvas.allowed`` where the canvas has one;
- the validator accepts it (``ok``, nothing implicated);
- an all-``[MASK]`` canvas implicates nothing (an empty position is no error);
- the task's domains (when it has them) keep the solution's value at every free position;
- bad input raises ``InvalidProblem`` (a ConstrainedError), never another exception.

How a known solution becomes tokens is the one task-specific piece: ``task.encode([solution])``
where a solution is itself a complete problem (grids, N-Queens), else an adapter below. A task
that neither works with the default nor has an adapter fails here, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from constrained import InvalidProblem, list_tasks, load_task
from constrained.canvas import Canvas
from constrained.task import Task

torch.set_num_threads(1)

#: task options and generate() options that keep each problem small and fast
SMALL: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "n-queens": ({"n": 6}, {}),
    "graph-coloring": ({}, {"min_nodes": 8, "max_nodes": 12, "precolored": 0.25}),
    "graph-gen": ({"max_nodes": 8}, {}),
    "code-infill": ({}, {"max_lines": 1}),
    "code-edit": ({}, {"max_lines": 1}),
}

SEEDS = (0, 1)


def _positional(task: Task, canvas: Canvas, values: list[int]) -> torch.Tensor:
    """Tokens with ``values`` at the first positions; fixed positions beyond them unchanged."""
    tokens = canvas.tokens.clone()
    tokens[0, : len(values)] = torch.tensor(values, dtype=torch.long)
    return tokens


def _coloring(task: Any, canvas: Canvas, problem: Any, solution: dict) -> torch.Tensor:
    nodes = canvas.meta[0].nodes
    return _positional(task, canvas, [task._first + solution[node] for node in nodes])


def _graph_gen(task: Any, canvas: Canvas, problem: Any, solution: dict) -> torch.Tensor:
    edges = {tuple(sorted(e)) for e in solution["edges"]}
    tokens = canvas.tokens.clone()
    for p, e in enumerate(task.pairs):
        if e[1] < solution["n"] and not canvas.fixed[0, p]:
            tokens[0, p] = task._one if tuple(e) in edges else task._zero
    return tokens


def _peptide(task: Task, canvas: Canvas, problem: Any, solution: str) -> torch.Tensor:
    return _positional(task, canvas, [task.vocab.id(ch) for ch in solution])


def _code(task: Any, canvas: Canvas, problem: Any, solution: str) -> torch.Tensor:
    ids = task.encode_hole(solution)
    L = canvas.tokens.shape[1]
    return torch.tensor([ids + [task.vocab.pad_id] * (L - len(ids))], dtype=torch.long)


#: name -> (task, canvas of the problem, problem, known solution) -> tokens [1, L]
SOLUTION_TOKENS: dict[str, Callable[..., torch.Tensor]] = {
    "graph-coloring": _coloring,
    "graph-gen": _graph_gen,
    "peptide": _peptide,
    "code-infill": _code,
    "code-edit": _code,
}

#: how a decoded solution compares with the known one, where they are not plain equals
SAME: dict[str, Callable[[Any, Any], bool]] = {
    "code-infill": lambda decoded, known: decoded.hole == known,
    "code-edit": lambda decoded, known: decoded.hole == known,
    "graph-gen": lambda decoded, known: decoded["n"] == known["n"]
    and sorted(map(sorted, decoded["edges"])) == sorted(map(sorted, known["edges"])),
}


def _solution_tokens(name: str, task: Task, canvas: Canvas, problem: Any, solution: Any) -> torch.Tensor:
    if name in SOLUTION_TOKENS:
        return SOLUTION_TOKENS[name](task, canvas, problem, solution)
    try:  # the default: a known solution is a complete problem of the task
        return task.encode([solution]).tokens
    except InvalidProblem as e:
        pytest.fail(f"task {name!r}: its known solution is not a problem it encodes ({e}); give it an "
                    f"adapter in SOLUTION_TOKENS (tests/test_task_contract.py)")


# the list of names is read when the module is collected: a task registered through an entry
# point is checked too
TASKS = list_tasks()


@pytest.fixture(scope="module", params=TASKS)
def case(request) -> tuple[str, Task, list[tuple[Any, Any]]]:
    name = request.param
    task_opts, gen_opts = SMALL.get(name, ({}, {}))
    task = load_task(name, **task_opts)
    pairs = [pair for seed in SEEDS for pair in task.generate(1, seed=seed, **gen_opts)]
    assert pairs, f"task {name!r}: generate() gave no problem"
    return name, task, pairs


def test_the_known_solution_round_trips_and_validates(case):
    name, task, pairs = case
    for problem, solution in pairs:
        canvas = task.encode([problem])
        tokens = _solution_tokens(name, task, canvas, problem, solution)
        assert tokens.shape == canvas.tokens.shape
        decoded = task.decode(canvas, tokens)[0]
        assert SAME.get(name, lambda a, b: a == b)(decoded, solution), (decoded, solution)
        assert torch.equal(tokens[canvas.fixed], canvas.tokens[canvas.fixed]), "the solution changes a given"
        if canvas.allowed is not None:
            assert canvas.allowed.gather(-1, tokens[..., None]).all(), "canvas.allowed excludes the solution"
        rep = task.validate(canvas, tokens, messages=True)
        assert bool(rep.ok.all()), (name, rep.messages)
        assert not rep.violations.any(), (name, rep.messages)


def test_an_all_mask_canvas_implicates_nothing(case):
    name, task, pairs = case
    canvas = task.encode([p for p, _ in pairs])
    masked = torch.full_like(canvas.tokens, task.vocab.mask_id)
    rep = task.validate(canvas, masked, messages=True)
    assert not rep.violations.any(), (name, rep.messages)
    assert not rep.ok.any()  # an empty canvas is not a solution
    # the problem's own canvas (givens only) implicates nothing either
    assert not task.validate(canvas, canvas.tokens).violations.any()


def test_domains_keep_the_known_solution(case):
    name, task, pairs = case
    for problem, solution in pairs:
        canvas = task.encode([problem])
        dom = task.domains(canvas, canvas.tokens)
        if dom is None:
            pytest.skip(f"task {name!r} declares no domains (Task.domains returns None)")
        tokens = _solution_tokens(name, task, canvas, problem, solution)
        kept = dom.gather(-1, tokens[..., None])[..., 0]  # [1, L]
        free = ~canvas.fixed
        assert kept[free].all(), f"domains remove the solution's value at positions {(~kept & free).nonzero().tolist()}"


#: inputs no task takes as a problem
BAD_INPUTS = [None, 3.5, object(), [], {"no such key": 1}]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=["None", "float", "object", "empty-list", "unknown-key"])
def test_bad_input_raises_invalid_problem(case, bad):
    name, task, _ = case
    with pytest.raises(InvalidProblem):
        task.encode([bad])


def test_a_bare_problem_is_refused_with_invalid_problem(case):
    """``encode`` takes a list of problems; a bare generated problem not wrapped in one is refused
    by name, or (for a problem that is itself a sequence) read as a batch whose items fail."""
    name, task, pairs = case
    with pytest.raises(InvalidProblem):
        task.encode(pairs[0][0])


def test_parse_and_encode_parsed_are_what_encode_does(case):
    """The template: encode == encode_parsed over parse, item by item; the optional hooks are
    what Task declares (None or a callable; data_card None or text)."""
    name, task, pairs = case
    problems = [p for p, _ in pairs]
    a = task.encode(problems)
    b = task.encode_parsed([task.parse(p) for p in problems])
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.fixed, b.fixed), name
    for hook in ("draw", "trace_view", "inline_problems"):
        assert getattr(task, hook) is None or callable(getattr(task, hook)), (name, hook)
    assert task.data_card is None or isinstance(task.data_card, str), name


def test_every_registered_task_is_checked():
    assert "n-queens" in TASKS, ("n-queens is registered by its entry point alone: reinstall "
                                 "(pip install -e .) so the package metadata carries pyproject.toml's")
    assert set(SOLUTION_TOKENS) <= set(TASKS) and set(SMALL) <= set(TASKS)


def test_a_batch_is_encoded_once_and_bad_problems_are_isolated(sudoku_task):
    """solve_with encodes a chunk once; only when a problem in it is bad does it encode one at a time,
    and the bad one gets an unsolved Result naming what is wrong while the rest are solved."""
    from conftest import EASY, tiny_model
    from constrained.engine.noise import make_noise

    from constrained import Solver, make_config, solve_with

    calls = []

    class Counting(type(sudoku_task)):
        def encode_parsed(self, rows):
            calls.append(len(rows))
            return super().encode_parsed(rows)

    task = Counting()
    solver = Solver(task, tiny_model(task), make_noise("mask", task.vocab.mask_id), make_config(max_passes=4))
    solve_with(solver, [EASY] * 5)
    assert calls == [5]
    calls.clear()
    res = solve_with(solver, [EASY, "12", EASY], on_invalid="result")
    assert calls == [1, 1, 2]  # the batch failed to parse: each alone, then the good ones together
    assert res[1].error and "81" in res[1].error and not res[1].valid
    assert res[0].valid and res[2].valid
