"""Models that read candidate domains get them in training and at inference."""

import numpy as np
import pytest
import torch
from conftest import EASY, EASY_SOLUTION, tiny_model
from constrained.engine import make_noise
from constrained.engine.denoiser import domain_features, predict_logits
from constrained.finetune.data import DiffusionCollator

from constrained.solver import Solver, SolverConfig


def test_collator_gives_candidates_of_empty_positions_only(sudoku_task):
    col = DiffusionCollator(sudoku_task, make_noise("mask", 1), seed=0, domains=True)
    rng = np.random.default_rng(0)
    batch = col([sudoku_task.training_example(rng) for _ in range(4)])
    dom, xt = batch["domains"], batch["input_ids"]
    assert dom.shape == (4, 81, len(sudoku_task.vocab))
    empty = xt == 1
    assert not dom[~empty].any()
    assert dom[empty].any(-1).all()  # every empty cell of a valid grid keeps its true digit
    truth = torch.zeros_like(dom).scatter_(-1, batch["labels"].unsqueeze(-1), True)
    assert (dom & truth)[empty].any(-1).all()


def test_domain_input_needs_mask_noise(sudoku_task):
    with pytest.raises(ValueError, match="mask noise"):
        DiffusionCollator(sudoku_task, make_noise("uniform", 1), domains=True)


def test_domain_reading_model_refuses_to_run_blind_and_solver_feeds_it(sudoku_task):
    model = tiny_model(sudoku_task, domain_input=True)
    canvas = sudoku_task.encode([EASY])
    with pytest.raises(ValueError, match="domains"):
        model(input_ids=canvas.tokens, coords=sudoku_task.layout.coords)
    feats = domain_features(sudoku_task.domains(canvas, canvas.tokens), canvas.fixed)
    assert predict_logits(model, canvas.tokens, canvas, domains=feats).shape == (1, 81, len(sudoku_task.vocab))
    # model-only mode still feeds the model its input features (no masks, no re-noising)
    for cfg in (SolverConfig(max_passes=64, search="local"), SolverConfig.model_only(max_passes=64)):
        r = Solver(sudoku_task, model, make_noise("mask", 1), cfg).run(canvas)[0]
        assert r.passes >= 1
    assert Solver(sudoku_task, model, make_noise("mask", 1), SolverConfig(max_passes=64)).run(canvas)[0].solution \
        == EASY_SOLUTION
