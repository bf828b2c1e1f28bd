import pytest
import torch
from constrained.engine import MaskNoise, Sampler, UniformNoise, make_noise


def _domain(B=4, L=10, V=8):
    d = torch.zeros(B, L, V, dtype=torch.bool)
    d[..., 2:] = True  # content ids 2..7
    return d


def test_mask_corruption_keeps_fixed_and_masks_at_rate_t():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(2, 8, (64, 50), generator=g)
    fixed = torch.zeros_like(x0, dtype=torch.bool)
    fixed[:, :10] = True
    t = torch.full((64,), 0.5)
    xt, corrupted = MaskNoise(mask_id=1).corrupt(x0, t, fixed, _domain(64, 50), g)
    assert not corrupted[:, :10].any() and torch.equal(xt[:, :10], x0[:, :10])
    assert (xt[corrupted] == 1).all() and torch.equal(xt[~corrupted], x0[~corrupted])
    assert 0.45 < corrupted[:, 10:].float().mean() < 0.55


def test_uniform_noise_draws_only_allowed_content():
    g = torch.Generator().manual_seed(0)
    dom = _domain(8, 30)
    dom[:, :, 5] = False
    x = UniformNoise(mask_id=1).prior(torch.zeros(8, 30, dtype=torch.long),
                                      torch.zeros(8, 30, dtype=torch.bool), dom, g)
    assert ((x >= 2) & (x != 5)).all()


def test_masked_loss_weights_by_inverse_t_and_ignores_clean_positions():
    x0 = torch.tensor([[2, 3, 4]])
    logits = torch.zeros(1, 3, 6)
    fixed = torch.tensor([[True, False, False]])
    corrupted = torch.tensor([[False, True, False]])
    ln6 = torch.log(torch.tensor(6.0))
    loss = MaskNoise(1).loss(logits, x0, corrupted, torch.tensor([0.25]), fixed)
    assert torch.isclose(loss, ln6 * 4 / 2)  # one masked token, weight 1/t = 4, two free positions
    uni = UniformNoise(1).loss(logits, x0, corrupted, torch.tensor([0.25]), fixed)
    assert torch.isclose(uni, ln6)  # every non-fixed position, unweighted


def test_threshold_sampler_commits_confident_and_at_least_one():
    logits = torch.full((2, 4, 6), -5.0)
    logits[0, :, 2] = 5.0  # item 0: all confident
    logits[1, 0, 3] = 1.0  # item 1: nothing confident
    allowed = _domain(2, 4, 6)
    cand = torch.ones(2, 4, dtype=torch.bool)
    pred, conf, commit, _ = Sampler("threshold", threshold=0.9, floor=False).step(logits, allowed, cand, 0)
    assert commit[0].all()
    assert commit[1].sum() == 1 and commit[1, 0]
    assert pred[1, 0] == 3
    # with the schedule floor, an unsure model still fills the canvas within `steps` passes
    _, _, commit, _ = Sampler("threshold", threshold=0.9, steps=2, floor=True).step(logits, allowed, cand, 0)
    assert commit[1].sum() == 2 and commit[0].all()


def test_sampler_never_picks_disallowed_or_non_candidates():
    logits = torch.randn(3, 5, 6)
    logits[..., 1] = 100.0  # [MASK] is most likely but not allowed
    allowed = _domain(3, 5, 6)
    cand = torch.tensor([[True, False, True, False, True]] * 3)
    for strategy in ("threshold", "topk", "margin"):
        pred, _, commit, _ = Sampler(strategy, threshold=0.0, steps=2).step(logits, allowed, cand, 0)
        assert (pred >= 2).all()
        assert not (commit & ~cand).any()


def test_topk_schedule_commits_ceil_remaining_over_passes_left():
    logits = torch.randn(1, 10, 6)
    cand = torch.ones(1, 10, dtype=torch.bool)
    s = Sampler("topk", steps=4)
    assert s.step(logits, _domain(1, 10, 6), cand, 0)[2].sum() == 3  # ceil(10/4)
    assert s.step(logits, _domain(1, 10, 6), cand, 3)[2].sum() == 10  # last pass: everything


def test_temperature_sampling_is_seeded():
    logits = torch.zeros(2, 20, 6)
    a = Sampler(temperature=1.0).step(logits, _domain(2, 20, 6), torch.ones(2, 20, dtype=torch.bool), 0,
                                      generator=torch.Generator().manual_seed(1))[0]
    b = Sampler(temperature=1.0).step(logits, _domain(2, 20, 6), torch.ones(2, 20, dtype=torch.bool), 0,
                                      generator=torch.Generator().manual_seed(1))[0]
    assert torch.equal(a, b) and len(set(a.flatten().tolist())) > 1


def test_bad_sampler_and_noise_settings_are_named():
    with pytest.raises(ValueError, match="strategy"):
        Sampler("best")
    with pytest.raises(ValueError, match="threshold"):
        Sampler(threshold=2.0)
    with pytest.raises(ValueError, match="noise process"):
        make_noise("gaussian", 1)
