"""Block-autoregressive diffusion with a KV cache, and the AR baseline, on tiny random models."""

from __future__ import annotations

import pytest
import torch
from constrained.engine.ar import ar_config_like, ar_generate, continuation_nll
from constrained.engine.block import BlockConfig, generate_blocks, produced_tokens, repetition_validator
from constrained.engine.blockmodel import BlockDiffusionLM, block_config
from constrained.engine.noise import MaskNoise, UniformNoise
from constrained.engine.samplers import Sampler

from constrained.errors import ConfigError, InvalidProblem, ModelMismatch

V, K = 48, 8


def tiny_block_model(seed: int = 0, canvas: int = K, ctx: int = 96) -> BlockDiffusionLM:
    torch.manual_seed(seed)
    cfg = block_config(V, canvas, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, max_position_embeddings=ctx)
    return BlockDiffusionLM(cfg).eval()


@pytest.fixture(scope="module")
def model() -> BlockDiffusionLM:
    return tiny_block_model()


@pytest.fixture(scope="module")
def prompt() -> torch.Tensor:
    return torch.randint(3, V, (3, 6), generator=torch.Generator().manual_seed(1))


def test_canvas_pass_on_the_cache_equals_recomputing_the_prefix(model, prompt):
    cache = model.new_cache(3)
    model.prefill(prompt, cache)
    block = torch.randint(3, V, (3, K), generator=torch.Generator().manual_seed(2))
    model.commit(block, cache)
    canvas = torch.randint(3, V, (3, K), generator=torch.Generator().manual_seed(3))
    cached = model.canvas_logits(canvas, cache)
    full = model.full_logits(torch.cat([prompt, block], 1), canvas)
    assert torch.allclose(cached, full, atol=1e-5)
    assert cache.length == prompt.shape[1] + K  # the canvas pass read the cache and left it as it was


@pytest.mark.parametrize("noise", [MaskNoise(1), UniformNoise(1)], ids=["mask", "uniform"])
def test_cached_and_uncached_block_decoding_give_the_same_tokens(model, prompt, noise):
    cfg = dict(max_new_tokens=3 * K, sampler=Sampler(threshold=0.05), stop_at_eos=False)
    a, sa = generate_blocks(model, prompt, noise, BlockConfig(**cfg))
    b, sb = generate_blocks(model, prompt, noise, BlockConfig(use_cache=False, **cfg))
    assert torch.equal(a, b)
    assert a.shape == (3, 3 * K)
    assert sa.blocks == 3 and sa.commits == 3  # prefill + two committed blocks (the last needs none)
    assert sb.commits == 0 and sa.passes == sb.passes
    assert ((a >= 2) & (a != model.mask_id)).all()  # every position holds content


def test_topk_schedule_finalises_canvas_over_steps_passes(model, prompt):
    cfg = BlockConfig(max_new_tokens=2 * K, sampler=Sampler("topk", steps=2), stop_at_eos=False)
    out, st = generate_blocks(model, prompt, MaskNoise(1), cfg)
    assert st.passes == 4 and st.tokens_per_pass == pytest.approx(K / 2)
    assert st.tokens == 3 * 2 * K


class EosAt:
    """A model wrapper whose logits force [EOS] at one canvas position of the first block."""

    def __init__(self, model: BlockDiffusionLM, pos: int) -> None:
        self.m, self.pos = model, pos
        for name in ("canvas_length", "max_context", "mask_id", "eos_id", "pad_id"):
            setattr(self, name, getattr(model, name))
        self.content_mask, self.new_cache, self.prefill = model.content_mask, model.new_cache, model.prefill
        self.commit = model.commit

    def canvas_logits(self, canvas, cache):
        logits = self.m.canvas_logits(canvas, cache)
        logits[:, self.pos, self.eos_id] = 1e4
        return logits


def test_eos_stops_generation_and_pads_the_rest(model, prompt):
    out, st = generate_blocks(EosAt(model, 3), prompt, MaskNoise(1),
                              BlockConfig(max_new_tokens=4 * K, sampler=Sampler(threshold=0.05)))
    assert st.blocks == 1  # every item stopped in the first block: no more canvases
    assert (out[:, 3] == model.eos_id).all() and (out[:, 4:] == model.pad_id).all()
    assert produced_tokens(out, model.eos_id, model.pad_id).tolist() == [4, 4, 4]
    assert st.passes < K  # the padding after [EOS] was finalised at once


def test_repetition_validator_flags_the_repeating_copy():
    check = repetition_validator(n=2)
    bad = check(torch.tensor([[5, 6, 5, 6, 5, 6, 7, 8], [5, 6, 7, 8, 9, 10, 11, 12]]))
    assert bad[0].tolist() == [False, False, True, True, True, True, False, False]
    assert not bad[1].any()


def test_validator_renoises_and_bars_rejected_values(model, prompt):
    cfg = BlockConfig(max_new_tokens=K, sampler=Sampler(threshold=0.05), stop_at_eos=False, max_passes=3 * K)
    plain, _ = generate_blocks(model, prompt, MaskNoise(1), cfg)
    rejected = int(plain.flatten().mode().values)  # a value the model likes to commit
    calls = []

    def reject(view):
        calls.append(view.clone())
        return view == rejected

    out, st = generate_blocks(model, prompt, MaskNoise(1), cfg, validator=reject)
    assert len(calls) == st.passes and st.validator_seconds > 0
    assert any((c == rejected).any() for c in calls)  # the model committed it...
    assert not (out == rejected).any()  # ...it was re-noised and barred, so none survives


def test_bad_inputs_raise_clear_errors(model, prompt):
    with pytest.raises(InvalidProblem, match="context of 96"):
        generate_blocks(model, torch.randint(3, V, (1, 90)), MaskNoise(1), BlockConfig(max_new_tokens=16))
    with pytest.raises(ModelMismatch, match="trained for canvases of 8"):
        model.canvas_logits(torch.randint(3, V, (3, K + 1)), model.new_cache(3))
    other = tiny_block_model(canvas=16)
    cache = other.new_cache(3)
    with pytest.raises(ModelMismatch, match="another model"):
        model.prefill(prompt, cache)
    with pytest.raises(ModelMismatch, match="another model"):
        generate_blocks(model, prompt, MaskNoise(1), BlockConfig(max_new_tokens=16), cache=cache)
    with pytest.raises(ConfigError):
        BlockConfig(max_new_tokens=0)


def test_save_and_reload_keeps_the_canvas_length(model, tmp_path):
    model.save_pretrained(tmp_path, safe_serialization=True)
    again = BlockDiffusionLM.from_pretrained(tmp_path)
    assert again.canvas_length == K and isinstance(again, BlockDiffusionLM)


def test_ar_baseline_has_the_same_size_and_decodes_with_a_cache(model, prompt):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    ar = LlamaForCausalLM(ar_config_like(model.config)).eval()
    assert sum(p.numel() for p in ar.parameters()) == sum(p.numel() for p in model.parameters())
    out, st = ar_generate(ar, prompt, 10, stop_at_eos=False)
    assert out.shape == (3, 10) and st.passes == 10 and st.tokens == 30
    # greedy decoding with the cache equals greedy decoding without it
    x = prompt
    for _ in range(10):
        x = torch.cat([x, ar(input_ids=x).logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, x[:, prompt.shape[1]:])
    nll = continuation_nll(ar, prompt, out)
    assert nll.shape == (3,) and (nll > 0).all()
    with pytest.raises(InvalidProblem, match="context"):
        ar_generate(ar, prompt, 200)


def test_bench_command_names_the_available_benchmarks(capsys):
    from constrained.cli import main

    assert main(["bench", "no-such-benchmark"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'no-such-benchmark'" in err and "engine" in err


# --- fill-in-the-middle: training order and PSM prompting ------------------------------------
PRE, SUF, MID, EOS_ID = 40, 41, 42, 43


def test_fim_permute_writes_prefix_suffix_middle_from_the_same_tokens():
    import numpy as np
    from constrained.engine.corpus import fim_permute

    x = torch.arange(3, 3 + 4 * 20).view(4, 20)
    out = fim_permute(x, 1.0, np.random.default_rng(0), PRE, SUF, MID, EOS_ID)
    assert out.shape == x.shape
    for row, orig in zip(out.tolist(), x.tolist(), strict=True):
        assert row[0] == PRE and row[-1] == EOS_ID
        s, m = row.index(SUF), row.index(MID)
        prefix, suffix, middle = row[1:s], row[s + 1 : m], row[m + 1 : -1]
        assert prefix + middle + suffix == orig[:16]  # the first S - 4 tokens, cut in three
    assert torch.equal(fim_permute(x, 0.0, np.random.default_rng(0), PRE, SUF, MID, EOS_ID), x)
    with pytest.raises(ConfigError, match="rate"):
        fim_permute(x, 1.5, np.random.default_rng(0), PRE, SUF, MID, EOS_ID)


@pytest.fixture(scope="module")
def fim_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["[PAD]", "[MASK]"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(["def add(a, b):\n    return a + b\n"] * 20, trainer=trainer)
    tok.add_special_tokens(["[PRE]", "[SUF]", "[MID]", "[EOS]"])
    return tok


def tiny_ar(tok, seed: int = 0):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = block_config(tok.get_vocab_size(), K, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, max_position_embeddings=128, eos_token_id=tok.token_to_id("[EOS]"))
    ac = ar_config_like(cfg)
    ac.train_length = 64
    return LlamaForCausalLM(ac).eval()


def test_psm_prompt_keeps_the_text_nearest_the_hole(fim_tokenizer):
    from constrained.engine.ar import psm_prompt

    tok = fim_tokenizer
    pre, suf, mid = (tok.token_to_id(t) for t in ("[PRE]", "[SUF]", "[MID]"))
    p, s = tok.encode("x = 1\n" * 10).ids, tok.encode("y = 2\n" * 10).ids
    assert psm_prompt(tok, "x = 1\n" * 10, "y = 2\n" * 10, 1000) == [pre, *p, suf, *s, mid]
    short = psm_prompt(tok, "x = 1\n" * 10, "y = 2\n" * 10, 13)
    assert len(short) == 13 and short[0] == pre and short[-1] == mid
    i = short.index(suf)
    assert short[1:i] == p[len(p) - (i - 1) :] and short[i + 1 : -1] == s[: 13 - 3 - (i - 1)]  # tail / head
    assert i - 1 == 5 and len(short) - i - 2 == 5  # the room is shared


def test_psm_infill_is_greedy_decoding_after_the_psm_prompt_up_to_eos(fim_tokenizer):
    from constrained.engine.ar import psm_infill, psm_prompt

    tok = fim_tokenizer
    ar = tiny_ar(tok)
    prefix, suffix = "def add(a, b):\n    ", "\n"
    x = torch.tensor([psm_prompt(tok, prefix, suffix, 64 - 6)])
    for _ in range(6):  # greedy, no cache
        x = torch.cat([x, ar(input_ids=x).logits[:, -1].argmax(-1, keepdim=True)], 1)
    new = x[0, -6:].tolist()
    eos = tok.token_to_id("[EOS]")
    want = tok.decode(new[: new.index(eos)] if eos in new else new)
    assert psm_infill(ar, tok, prefix, suffix, max_new_tokens=6) == want
    # a model that always says [EOS] infills nothing
    head = torch.nn.Linear(ar.config.hidden_size, ar.config.vocab_size)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[eos] = 1.0
    ar.lm_head = head
    assert psm_infill(ar, tok, prefix, suffix, max_new_tokens=6) == ""
    with pytest.raises(InvalidProblem, match="max_new_tokens"):
        psm_infill(ar, tok, prefix, suffix, max_new_tokens=100)


def test_content_mask_leaves_out_context_only_tokens():
    cfg = block_config(V, K, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       max_position_embeddings=64, eos_token_id=V - 1, non_content_ids=[V - 3, V - 2])
    m = BlockDiffusionLM(cfg).content_mask()
    assert not m[[0, 1, V - 3, V - 2]].any() and m[V - 1] and m[2 : V - 3].all()


@pytest.mark.parametrize("strategy", ["threshold", "topk", "margin"])
def test_sampler_choose_commits_what_step_commits(strategy):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 10, V, generator=g) * 3
    allowed = torch.rand(3, 10, V, generator=g) < 0.7
    candidates = torch.rand(3, 10, generator=g) < 0.6
    s = Sampler(strategy, threshold=0.3, steps=4)
    pred, conf, commit, _ = s.step(logits, allowed, candidates, 1)
    pred2, conf2, commit2 = s.choose(logits, candidates, 1, allowed=allowed)
    assert torch.equal(pred, pred2) and torch.equal(commit, commit2)
    assert torch.allclose(conf[candidates], conf2[candidates]) and (conf2[~candidates] == 0).all()
    # a caller that already masked the logits passes no domain
    pred3, _, commit3 = s.choose(logits.masked_fill(~allowed, -1e9), candidates, 1)
    assert torch.equal(pred, pred3) and torch.equal(commit, commit3)


def test_bans_are_sparse_and_a_position_with_every_value_barred_gets_them_back():
    from constrained.engine.block import _add_bans

    x = torch.tensor([[5, 6, 7]])
    ban = _add_bans(None, torch.tensor([[True, False, True]]), x, n_content=2)
    assert [t.tolist() for t in ban] == [[0, 0], [0, 2], [5, 7]]
    ban = _add_bans(ban, torch.tensor([[False, False, True]]), torch.tensor([[5, 6, 8]]), n_content=2)
    assert [t.tolist() for t in ban] == [[0], [0], [5]]  # position 2 had both its values barred: reset


def tiny_shifted_model(seed: int = 0) -> BlockDiffusionLM:
    torch.manual_seed(seed)
    cfg = block_config(V, K, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       max_position_embeddings=96, shift=True)
    return BlockDiffusionLM(cfg).eval()


def test_shifted_model_holds_the_last_token_back_and_matches_recomputing(prompt):
    m = tiny_shifted_model()
    cache = m.new_cache(3)
    m.prefill(prompt, cache)
    assert cache.length == prompt.shape[1] and cache.cache.get_seq_length() == prompt.shape[1] - 1
    assert torch.equal(cache.pending, prompt[:, -1:])
    block = torch.randint(3, V, (3, K), generator=torch.Generator().manual_seed(2))
    canvas = torch.randint(3, V, (3, K), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(m.canvas_logits(canvas, cache), m.full_logits(prompt, canvas), atol=1e-5)
    m.commit(block, cache)
    assert cache.length == prompt.shape[1] + K and torch.equal(cache.pending, block[:, -1:])
    full = m.full_logits(torch.cat([prompt, block], 1), canvas)
    assert torch.allclose(m.canvas_logits(canvas, cache), full, atol=1e-5)
    # the cache holds exactly the causal keys/values of everything but the pending token
    ref = m.new_cache(3)
    m.model(input_ids=torch.cat([prompt, block], 1)[:, :-1], past_key_values=ref.cache, use_cache=True)
    assert torch.allclose(cache.cache.layers[0].keys, ref.cache.layers[0].keys, atol=1e-5)


def test_shifted_model_predicts_each_canvas_token_from_the_position_before(prompt):
    """The logits of canvas position 0 are read at the last prompt token: changing that token moves them
    even when it is the only thing that changes, and the training loss reads the same positions."""
    m = tiny_shifted_model()
    canvas = torch.full((3, K), m.mask_id)
    a = m.full_logits(prompt, canvas)
    other = prompt.clone()
    other[:, -1] = (other[:, -1] + 1 - 3) % (V - 3) + 3
    assert not torch.allclose(a[:, 0], m.full_logits(other, canvas)[:, 0])
    x0 = torch.cat([prompt, torch.randint(3, V, (3, K))], 1)
    loss = m.diffusion_loss(x0, prompt.shape[1], MaskNoise(1), torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss > 0
    with pytest.raises(InvalidProblem, match="prefill a prompt"):
        m.canvas_logits(canvas, m.new_cache(3))


@pytest.mark.parametrize("noise", [MaskNoise(1), UniformNoise(1)], ids=["mask", "uniform"])
def test_shifted_model_decodes_the_same_with_and_without_the_cache(prompt, noise):
    m = tiny_shifted_model()
    cfg = dict(max_new_tokens=3 * K, sampler=Sampler(threshold=0.05), stop_at_eos=False)
    a, sa = generate_blocks(m, prompt, noise, BlockConfig(**cfg))
    b, _ = generate_blocks(m, prompt, noise, BlockConfig(use_cache=False, **cfg))
    assert torch.equal(a, b) and sa.blocks == 3


def test_shift_is_part_of_the_cache_fingerprint(prompt):
    cache = tiny_block_model().new_cache(3)
    with pytest.raises(ModelMismatch, match="another model"):
        tiny_shifted_model().prefill(prompt, cache)


def test_block_model_starts_from_the_ar_weights(tmp_path):
    from constrained.engine.lm_train import ar_weights_into_block
    from transformers import LlamaForCausalLM

    m = tiny_shifted_model()
    ar = LlamaForCausalLM(ar_config_like(m.config)).eval()
    ar.save_pretrained(tmp_path / "ar", safe_serialization=True)
    ar_weights_into_block(m, tmp_path / "ar")
    for (k, v), (k2, v2) in zip(m.state_dict().items(), ar.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    small = ar_config_like(block_config(V, K, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=32, max_position_embeddings=96))
    LlamaForCausalLM(small).save_pretrained(tmp_path / "small", safe_serialization=True)
    with pytest.raises(ConfigError, match="hidden_size 16 vs 32"):
        ar_weights_into_block(m, tmp_path / "small")
    with pytest.raises(ConfigError, match="no config.json"):
        ar_weights_into_block(m, tmp_path / "nowhere")


def test_lm_train_refuses_conflicting_starts(tmp_path):
    from constrained.engine.lm_train import LMTrainConfig, main, train

    with pytest.raises(ConfigError, match="not both"):
        train(LMTrainConfig(kind="block"), tmp_path, init="a", init_from_ar="b")
    with pytest.raises(ConfigError, match="--kind block"):
        train(LMTrainConfig(kind="ar"), tmp_path, init_from_ar="b")
    assert main(["--kind", "ar", "--out", str(tmp_path), "--init-from-ar", "b"]) == 2
