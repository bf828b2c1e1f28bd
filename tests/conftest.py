"""Shared fixtures: tiny random denoisers built in the test, fixed seeds."""

from __future__ import annotations

import pytest
import torch
from constrained.engine.model import DenoiserConfig, DenoiserModel

from constrained.task import Task


def tiny_model(task: Task, noise: str = "mask", seed: int = 0, **kw) -> DenoiserModel:
    """A 2-layer, 32-wide random denoiser for ``task``: fast, deterministic."""
    torch.manual_seed(seed)
    cfg = DenoiserConfig(
        vocab_size=len(task.vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, coord_sizes=dict(task.layout.coord_sizes), noise=noise, task=task.name,
        vocab_tokens=list(task.vocab.tokens), canvas_length=task.layout.length, **kw)
    return DenoiserModel(cfg).eval()


def tiny_graph_model(task: Task, seed: int = 0, **kw):
    """A 2-layer, 16-wide random GraphDenoiser (engine/graph.py) for a graph task."""
    from constrained.engine.graph import GraphDenoiser, GraphDenoiserConfig

    torch.manual_seed(seed)
    cfg = GraphDenoiserConfig(
        vocab_size=len(task.vocab), value_offset=2, num_values=len(task.vocab.content), hidden_size=16,
        value_hidden_size=8, num_hidden_layers=2, num_attention_heads=2, task=task.name,
        vocab_tokens=list(task.vocab.tokens), canvas_length=task.layout.length, **kw)
    return GraphDenoiser(cfg).eval()


@pytest.fixture
def sudoku_task():
    from constrained import load_task

    return load_task("sudoku")


EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
EASY_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
