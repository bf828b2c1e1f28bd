import pytest
import torch
from conftest import EASY, EASY_SOLUTION, tiny_model
from constrained.engine import Sampler, make_noise

from constrained import ConfigError, InvalidProblem, ModelMismatch, solve, solve_batch
from constrained.solver import Solver, SolverConfig


def _solver(task, floor=False, **cfg):
    # floor=False: a random model's guesses are worthless, so let propagation lead (commit
    # only what the domains force, one guess per pass)
    from constrained.api import make_config

    cfg.setdefault("search", "local")  # these tests are about re-noising; tests/test_search.py covers the rest
    return Solver(task, tiny_model(task), make_noise("mask", task.vocab.mask_id),
                  make_config(floor=floor, **cfg))


def test_renoising_and_domains_solve_easy_sudoku_with_random_model(sudoku_task):
    res = _solver(sudoku_task, max_passes=64).run(sudoku_task.encode([EASY]))[0]
    assert res.valid and res.solution == EASY_SOLUTION
    assert 1 <= res.passes <= 64


def test_model_only_never_calls_an_invalid_grid_valid(sudoku_task):
    results = _solver(sudoku_task, max_passes=64, domains=False, validator_renoise=False, tabu=0,
                      restarts=False).run(sudoku_task.encode([EASY] * 4))
    for r in results:
        canvas = sudoku_task.encode([EASY])
        tokens = torch.tensor([r.tokens])
        assert r.valid == bool(sudoku_task.validate(canvas, tokens).ok[0])
        if not r.valid:
            assert r.violations or any("empty" in m for m in r.messages)


def test_givens_are_never_changed(sudoku_task):
    r = _solver(sudoku_task, max_passes=8).run(sudoku_task.encode([EASY]))[0]
    assert all(a == b for a, b in zip(EASY, r.solution) if a != ".")


def test_exhausted_budget_returns_unsolved_with_violations(sudoku_task):
    # an unsolvable puzzle whose givens break no rule: r1c9 has no candidate left
    bad = "12345678." + "........9" + "." * 63
    r = _solver(sudoku_task, max_passes=6).run(sudoku_task.encode([bad]))[0]
    assert not r.valid and r.passes <= 6


def test_uniform_noise_solves_with_renoising(sudoku_task):
    model = tiny_model(sudoku_task, noise="uniform")
    s = Solver(sudoku_task, model, make_noise("uniform", sudoku_task.vocab.mask_id),
               SolverConfig(max_passes=64, sampler=Sampler(floor=False)))
    assert s.run(sudoku_task.encode([EASY]))[0].valid


def test_trace_records_every_pass(sudoku_task):
    r = _solver(sudoku_task, max_passes=32, trace=True).run(sudoku_task.encode([EASY]))[0]
    assert r.trace is not None and len(r.trace) == r.passes
    last = r.trace[-1]
    assert all(last.committed) and sudoku_task.decode(None, torch.tensor([last.tokens]))[0] == r.solution


def test_each_mechanism_switches_off(sudoku_task):
    cfg = SolverConfig.model_only()
    assert not (cfg.domains or cfg.validator_renoise or cfg.tabu or cfg.restarts)


def test_solve_api_with_model_path_and_options(sudoku_task, tmp_path):
    tiny_model(sudoku_task).save_pretrained(tmp_path / "m")
    res = solve("sudoku", EASY, model=tmp_path / "m", max_passes=64, threshold=0.95, floor=False)
    assert res.valid and res.solution == EASY_SOLUTION
    out = solve_batch("sudoku", [EASY, "bad", EASY], model=tmp_path / "m", on_invalid="result", floor=False)
    assert [r.valid for r in out] == [True, False, True]
    assert "81 cells" in out[1].error
    with pytest.raises(InvalidProblem, match="81 cells"):
        solve_batch("sudoku", [EASY, "bad"], model=tmp_path / "m")
    with pytest.raises(ConfigError, match="unknown solver option"):
        solve("sudoku", EASY, model=tmp_path / "m", passes=3)


def test_model_of_another_vocabulary_is_refused(sudoku_task, tmp_path):
    from constrained.engine import DenoiserConfig, DenoiserModel

    from constrained import Layout, Vocab

    other = DenoiserConfig(vocab_size=5, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                           intermediate_size=16, vocab_tokens=list(Vocab.build("ABC").tokens), task="other")
    DenoiserModel(other).save_pretrained(tmp_path / "other")
    with pytest.raises(ModelMismatch, match="vocabulary"):
        solve("sudoku", EASY, model=tmp_path / "other")
    assert Layout(length=3).length == 3


def test_backjumping_without_tabu_runs(sudoku_task):
    # tabu=0 turns the bars off; backjumping alone must still undo passes and solve
    r = _solver(sudoku_task, max_passes=64, tabu=0, backjump=True).run(sudoku_task.encode([EASY]))[0]
    assert r.valid and r.solution == EASY_SOLUTION
