"""DiffusionGemma's sampler (strategy "entropy-bound"): token-for-token parity with transformers'
DiffusionGemma ``generate`` on a tiny random config, and the constraint layer on top of it."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import EASY_SOLUTION, tiny_gemma
from constrained.engine.block import BlockConfig, generate_blocks
from constrained.engine.gemma import GemmaDenoiser
from constrained.engine.noise import UniformNoise
from constrained.engine.samplers import Sampler
from torch import nn
from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

P, N = 5, 13  # prompt length; new tokens (not a multiple of the canvas of 8)


def _reference(gem, prompt, seed, steps, bound, stop_entropy, stability=1):
    torch.manual_seed(seed)  # transformers draws from the global generator
    out = gem.generate(prompt, max_new_tokens=N, max_denoising_steps=steps,
                       sampler_config=EntropyBoundSamplerConfig(entropy_bound=bound), t_min=0.4, t_max=0.8,
                       stability_threshold=stability, confidence_threshold=stop_entropy, eos_token_id=1,
                       pad_token_id=0)
    return out.sequences[:, P:]


def _ours(gem, prompt, seed, steps, bound, stop_entropy, stability=1):
    sampler = Sampler.diffusion_gemma(steps=steps, entropy_bound=bound, stop_entropy=stop_entropy,
                                      stability=stability)
    cfg = BlockConfig(max_new_tokens=N, sampler=sampler, content_only=False, seed=seed)
    return generate_blocks(GemmaDenoiser(gem), prompt, UniformNoise(0), cfg)


class _Peaked(nn.Module):
    """An lm_head whose logits favour one token everywhere, so the canvas becomes stable and confident."""

    def __init__(self, head: nn.Module, token: int) -> None:
        super().__init__()
        self.head, self.token = head, token

    def forward(self, h):
        out = self.head(h) * 0.01
        out[..., self.token] += 25.0
        return out


@pytest.fixture(scope="module")
def prompt():
    return torch.randint(3, 60, (3, P), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("steps,bound,stop_entropy", [(6, 0.1, 0.005), (5, 5.0, 0.005)])
@pytest.mark.parametrize("seed", [0, 1])
def test_same_tokens_as_transformers_generate(prompt, steps, bound, stop_entropy, seed):
    gem = tiny_gemma(canvas=8)
    ref = _reference(gem, prompt, seed, steps, bound, stop_entropy)
    ours, stats = _ours(gem, prompt, seed, steps, bound, stop_entropy)
    assert ours.shape == (3, N)  # exactly max_new_tokens; transformers returns whole canvases (16)
    assert torch.equal(ours, ref[:, :N])
    assert stats.passes == 2 * steps  # a random model is never confident: every step runs


@pytest.mark.parametrize("token", [7, 1])  # 1 is [EOS]: the sequence ends in the first canvas
def test_stops_when_stable_and_confident_as_transformers_does(prompt, token):
    gem = tiny_gemma(canvas=8)
    gem.lm_head = _Peaked(gem.lm_head, token)
    ref = _reference(gem, prompt, 0, 10, 0.1, 0.005)
    ours, stats = _ours(gem, prompt, 0, 10, 0.1, 0.005)
    padded = torch.cat([ref, torch.zeros(3, max(N - ref.shape[1], 0), dtype=torch.long)], 1)[:, :N]
    assert torch.equal(ours, padded)
    blocks = 1 if token == 1 else 2
    assert stats.blocks == blocks and stats.passes == 2 * blocks  # stable from the second step on
    if token == 1:
        assert (ours[:, 0] == 1).all() and (ours[:, 1:] == 0).all()


def test_accept_set_is_the_entropy_bound():
    s = Sampler(strategy="entropy-bound", entropy_bound=0.1)
    e = torch.tensor([[0.05, 1.0, 0.06, 0.5], [0.01, 0.02, 0.03, 0.04], [2.0, 3.0, 4.0, 5.0]])
    cand = torch.ones(3, 4, dtype=torch.bool)
    # row 0: sorted 0.05, 0.06, 0.5: 0.05 <= 0.1 takes two, 0.11 > 0.1 stops; row 1: sums 0, .01, .03, .06
    # all within; row 2: only the lowest (sum less the largest is 0 for one token)
    assert s.accept(e, cand).tolist() == [[True, False, True, False], [True] * 4, [True, False, False, False]]
    cand[1, 0] = False  # a committed position is no candidate
    assert s.accept(e, cand)[1].tolist() == [False, True, True, True]
    assert s.schedule_temperature(0) == pytest.approx(0.8)
    assert s.schedule_temperature(s.steps - 1) == pytest.approx(0.4 + 0.4 / s.steps)
    with pytest.raises(ValueError, match="t_min"):
        Sampler(strategy="entropy-bound", t_min=0.9, t_max=0.5)


def test_step_samples_inside_the_allowed_tokens_and_commits_candidates_only():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 10, 6, generator=g)
    allowed = torch.rand(4, 10, 6, generator=g) < 0.5
    allowed[..., 2] = True
    candidates = torch.rand(4, 10, generator=g) < 0.6
    s = Sampler.diffusion_gemma(entropy_bound=2.0)
    for p in range(5):
        pred, conf, commit, _ = s.step(logits, allowed, candidates, p, generator=g)
        assert allowed.gather(-1, pred.unsqueeze(-1)).all()
        assert not (commit & ~candidates).any() and commit.any(-1)[candidates.any(-1)].all()


class _Recorder(nn.Module):
    """Passes through to a denoiser and keeps every canvas it is shown."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.seen = inner, []

    @property
    def config(self):
        return self.inner.config

    def forward(self, input_ids, **kw):
        self.seen.append(input_ids.clone())
        return self.inner(input_ids, **kw)


def test_constraints_on_fixed_positions_never_change_and_domains_hold_every_step(sudoku_task):
    from constrained.solver import Solver, SolverConfig

    gem = GemmaDenoiser(tiny_gemma(canvas=96), token_map=torch.arange(len(sudoku_task.vocab)) + 3)
    rec = _Recorder(gem)
    gone = set(random.Random(3).sample(range(81), 60))  # 60 blanks: propagation alone does not finish it
    problem = "".join("." if i in gone else c for i, c in enumerate(EASY_SOLUTION))
    canvas = sudoku_task.encode([problem])
    cfg = SolverConfig(max_passes=12, sampler=Sampler.diffusion_gemma(steps=12), trace=True, search="local")
    res = Solver(sudoku_task, rec, UniformNoise(sudoku_task.vocab.mask_id), cfg).run(canvas, [problem])[0]
    fixed = canvas.fixed[0]
    digits = sudoku_task.vocab.content_mask()
    assert len(rec.seen) == res.passes > 3
    for x in rec.seen:  # what the model is shown at every step
        assert torch.equal(x[0][fixed], canvas.tokens[0][fixed])
        assert digits[x[0]].all()  # never [PAD] / [MASK] / anything outside the task's domain
    idx = torch.arange(81)
    row, col, box = idx // 9, idx % 9, (idx // 27) * 3 + (idx % 9) // 3
    peers = ((row[:, None] == row) | (col[:, None] == col) | (box[:, None] == box)) & (idx[:, None] != idx)
    givens = canvas.tokens[0]
    for rec_pass in res.trace:  # every token committed, at every step, is in its domain: no given peer has it
        board = torch.tensor(rec_pass.tokens)
        committed = torch.tensor(rec_pass.committed)
        assert torch.equal(board[fixed], givens[fixed]) and committed[fixed].all()
        for i in (committed & ~fixed).nonzero().squeeze(-1).tolist():
            assert not (peers[i] & fixed & (givens == board[i])).any()
    assert res.valid == sudoku_task.validate(canvas, torch.tensor([res.tokens])).ok.item()


def test_sampler_reads_a_checkpoints_generation_config():
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import DiffusionGemmaGenerationConfig

    gc = DiffusionGemmaGenerationConfig(max_denoising_steps=32, t_min=0.3, t_max=0.9, stability_threshold=2,
                                        confidence_threshold=0.01,
                                        sampler_config=EntropyBoundSamplerConfig(entropy_bound=0.25))
    s = Sampler.diffusion_gemma(gc, stability=3)
    assert (s.strategy, s.steps, s.t_min, s.t_max, s.stop_entropy, s.entropy_bound, s.stability) == (
        "entropy-bound", 32, 0.3, 0.9, 0.01, 0.25, 3)
    assert Sampler.diffusion_gemma(DiffusionGemmaGenerationConfig()).steps == 48  # unset: transformers' defaults


def test_block_validator_bars_what_it_implicates(prompt):
    gem = tiny_gemma(canvas=8)
    gem.lm_head = _Peaked(gem.lm_head, 7)  # the model wants token 7 everywhere
    cfg = BlockConfig(max_new_tokens=8, sampler=Sampler.diffusion_gemma(steps=6), seed=0)
    free, _ = generate_blocks(GemmaDenoiser(gem), prompt, UniformNoise(0), cfg)
    assert (free == 7).all()
    checked, stats = generate_blocks(GemmaDenoiser(gem), prompt, UniformNoise(0), cfg,
                                     validator=lambda tokens: tokens == 7)
    assert not (checked == 7).any() and stats.passes >= 2


def test_every_end_of_sequence_id_of_the_generation_config_stops(prompt):
    gem = tiny_gemma(canvas=8)
    gem.lm_head = _Peaked(gem.lm_head, 5)
    gem.generation_config.eos_token_id = [1, 5]  # a chat checkpoint's [EOS] and <end_of_turn>
    torch.manual_seed(0)
    ref = gem.generate(prompt, max_new_tokens=N, max_denoising_steps=10, eos_token_id=[1, 5], pad_token_id=0,
                       sampler_config=EntropyBoundSamplerConfig(entropy_bound=0.1), t_min=0.4, t_max=0.8,
                       stability_threshold=1, confidence_threshold=0.005).sequences[:, P:]
    ours, stats = _ours(gem, prompt, 0, 10, 0.1, 0.005)
    assert ref.shape[1] == 8 and stats.blocks == 1  # both stop after the first canvas
    assert torch.equal(ours[:, :8], ref) and (ours[:, 0] == 5).all() and (ours[:, 1:] == 0).all()


def test_per_step_accept_sets_are_the_references(prompt, monkeypatch):
    from transformers.models.diffusion_gemma import generation_diffusion_gemma as ref_mod

    gem = tiny_gemma(canvas=8)
    theirs, ours = [], []
    ref_accept = ref_mod.EntropyBoundSampler.accept_canvas

    def record_ref(self, *args, **kw):
        out = ref_accept(self, *args, **kw)
        theirs.append(self.accepted_token_mask.clone())
        return out

    our_accept = Sampler.accept

    def record_ours(self, entropy, candidates):
        out = our_accept(self, entropy, candidates)
        ours.append(out.clone())
        return out

    monkeypatch.setattr(ref_mod.EntropyBoundSampler, "accept_canvas", record_ref)
    monkeypatch.setattr(Sampler, "accept", record_ours)
    _reference(gem, prompt, 3, 6, 5.0, 0.005)
    _ours(gem, prompt, 3, 6, 5.0, 0.005)
    assert len(theirs) == len(ours) == 12  # 2 canvases x 6 steps
    assert all(torch.equal(a, b) for a, b in zip(theirs, ours))
    assert any(int(a.sum(-1).max()) > 1 for a in ours)  # a bound of 5 nats accepts several at once
