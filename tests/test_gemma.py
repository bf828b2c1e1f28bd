"""The DiffusionGemma backend on a tiny random DiffusionGemmaForBlockDiffusion built here."""

from __future__ import annotations

import pytest
import torch
from constrained.engine.block import BlockConfig, generate_blocks
from constrained.engine.gemma import GemmaDenoiser
from constrained.engine.noise import UniformNoise
from constrained.engine.samplers import Sampler

from constrained.errors import InvalidProblem, ModelMismatch

V, K = 64, 8


def tiny_gemma(canvas: int = K, seed: int = 0):
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    text = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=16, global_head_dim=16,
                sliding_window=16,
                max_position_embeddings=128, num_experts=2, top_k_experts=1, moe_intermediate_size=32,
                layer_types=["sliding_attention", "full_attention"], pad_token_id=0, eos_token_id=1,
                bos_token_id=2)
    vision = dict(model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=2, head_dim=8)
    cfg = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas,
                               image_token_id=V - 1, boi_token_id=V - 2, eoi_token_id=V - 3)
    torch.manual_seed(seed)
    return DiffusionGemmaForBlockDiffusion(cfg).eval()


@pytest.fixture(scope="module")
def gemma() -> GemmaDenoiser:
    return GemmaDenoiser(tiny_gemma(), self_conditioning=False)


@pytest.fixture(scope="module")
def prompt() -> torch.Tensor:
    return torch.randint(3, V - 3, (2, 5), generator=torch.Generator().manual_seed(0))


def test_canvas_pass_matches_the_models_own_forward(gemma, prompt):
    from transformers import DynamicCache

    canvas = torch.randint(3, V - 3, (2, K), generator=torch.Generator().manual_seed(1))
    cache = gemma.new_cache(2)
    gemma.prefill(prompt, cache)
    ours = gemma.canvas_logits(canvas, cache)
    ref = gemma.model(input_ids=prompt, decoder_input_ids=canvas,
                      past_key_values=DynamicCache(config=gemma.text_config)).logits
    assert torch.allclose(ours, ref, atol=1e-5)
    assert cache.length == 5  # the decoder reads the encoder's cache, never writes it
    assert torch.allclose(gemma.full_logits(prompt, canvas), ref, atol=1e-5)


def test_block_diffusion_runs_on_gemma_cached_equals_uncached(gemma, prompt):
    cfg = dict(max_new_tokens=2 * K, sampler=Sampler(threshold=0.05), stop_at_eos=False)
    a, sa = generate_blocks(gemma, prompt, UniformNoise(gemma.mask_id), BlockConfig(**cfg))
    b, _ = generate_blocks(gemma, prompt, UniformNoise(gemma.mask_id), BlockConfig(use_cache=False, **cfg))
    assert torch.equal(a, b) and a.shape == (2, 2 * K)
    assert sa.blocks == 2 and sa.commits == 2
    assert gemma.content_mask()[a].all()  # never [PAD] or image tokens


def test_self_conditioning_feeds_the_previous_pass_logits(prompt):
    den = GemmaDenoiser(tiny_gemma(), self_conditioning=True)
    cache = den.new_cache(2)
    den.prefill(prompt, cache)
    canvas = torch.randint(3, V - 3, (2, K), generator=torch.Generator().manual_seed(1))
    first = den.canvas_logits(canvas, cache)
    second = den.canvas_logits(canvas, cache)  # same canvas, now conditioned on ``first``
    assert not torch.allclose(first, second)
    den.commit(canvas, cache)  # a new canvas position: the signal resets
    fresh = GemmaDenoiser(den.model, self_conditioning=False).canvas_logits(canvas, cache)
    assert torch.allclose(den.canvas_logits(canvas, cache), fresh, atol=1e-5)


def test_solver_runs_a_task_on_the_gemma_adapter(sudoku_task):
    from constrained.solver import Solver, SolverConfig
    from tests.conftest import EASY

    gem = tiny_gemma(canvas=96)
    token_map = torch.arange(len(sudoku_task.vocab)) + 3  # task ids onto model ids 3..
    den = GemmaDenoiser(gem, token_map=token_map)
    cfg = SolverConfig(max_passes=4, search="local")
    solver = Solver(sudoku_task, den, UniformNoise(sudoku_task.vocab.mask_id), cfg)
    res = solver.run(sudoku_task.encode([EASY]), [EASY])[0]
    assert res.passes >= 1 and len(res.solution) == 81
    assert res.valid == sudoku_task.validate(sudoku_task.encode([EASY]),
                                             torch.tensor([res.tokens])).ok.item()


def test_bad_inputs_raise_clear_errors(gemma, prompt):
    with pytest.raises(ModelMismatch, match="canvases of 8"):
        gemma.canvas_logits(torch.randint(3, V, (2, 12)), gemma.new_cache(2))
    with pytest.raises(InvalidProblem, match="context of 128"):
        generate_blocks(gemma, torch.randint(3, V, (1, 125)), UniformNoise(0), BlockConfig(max_new_tokens=8))
    from constrained.engine.blockmodel import BlockDiffusionLM, block_config

    other = BlockDiffusionLM(block_config(V, K, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                                          intermediate_size=16))
    with pytest.raises(ModelMismatch, match="another model"):
        gemma.prefill(prompt, other.new_cache(2))
    with pytest.raises(ModelMismatch, match="not a DiffusionGemma"):
        GemmaDenoiser(other)
    with pytest.raises(ModelMismatch, match="outside the model's vocabulary"):
        GemmaDenoiser(gemma.model, token_map=torch.tensor([0, V]))
