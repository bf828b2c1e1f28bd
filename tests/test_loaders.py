"""One loader for every kind of checkpoint: DiffusionGemma, masked LMs, and LLaDA / Dream stand-ins
(transformers' Llama / Qwen2 run non-causally, Dream's logits shifted by one), saved and opened by
path through ``solve``; LoRA fine-tuning on each; padded batches; bad checkpoints refused."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import EASY, save_checkpoint, tiny_gemma, tiny_standin, word_tokenizer
from constrained.engine.difflm import DiffusionLMDenoiser
from constrained.engine.gemma import GemmaDenoiser

from constrained import load_task, solve, solve_batch
from constrained.cli import main
from constrained.errors import ConfigError, ModelMismatch
from constrained.loading import checkpoint_kind, load_denoiser

STANDINS = [("llada", "llama"), ("dream", "qwen2"), ("dream", "llama")]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    out = {f"{k}-{a}": save_checkpoint(tiny_standin(k, a), root / f"{k}-{a}") for k, a in STANDINS}
    out["gemma"] = save_checkpoint(tiny_gemma(canvas=96), root / "gemma")
    return out


@pytest.mark.parametrize("name", ["llada-llama", "dream-qwen2", "gemma"])
def test_each_kind_loads_by_path_and_runs_sudoku_under_the_constraint_layer(ckpts, sudoku_task, name):
    den, noise = load_denoiser(sudoku_task, ckpts[name])
    if name == "gemma":
        assert isinstance(den, GemmaDenoiser) and noise.name == "uniform"
        assert den.token_map.tolist()[2:] == list(range(6, 15))  # digits by string; [MASK] -> [PAD] (0)
    else:
        assert isinstance(den, DiffusionLMDenoiser) and noise.name == "mask"
        assert den.kind == name.split("-")[0] and den.shift == (den.kind == "dream")
        assert den.token_map.tolist() == [0, 4, *range(6, 15)]  # [PAD], the config's mask id, digits
    res = solve("sudoku", EASY, model=ckpts[name], max_passes=16)
    assert res.valid and len(res.solution) == 81  # the validator passed (the constraint layer finishes it)
    hard = solve("sudoku", EASY, model=ckpts[name], max_passes=3, domains=False, restarts=False)
    assert hard.passes == 3 and not hard.valid  # the random model alone does not solve it


def test_llada_is_bidirectional_and_dream_reads_the_previous_position(ckpts, sudoku_task):
    lla, _ = load_denoiser(sudoku_task, ckpts["llada-llama"])
    x = sudoku_task.encode([EASY]).tokens
    base = lla(x)
    y = x.clone()
    y[0, 80] = 5 if int(x[0, 80]) != 5 else 6
    assert not torch.allclose(lla(y)[0, 0], base[0, 0])  # the last cell changes the first: not causal
    dream, _ = load_denoiser(sudoku_task, ckpts["dream-llama"])
    ids = torch.cat([torch.full((1, 1), 2), dream.token_map[x]], 1)
    full = dream.model(input_ids=ids, attention_mask=torch.ones(1, 1, 82, 82, dtype=torch.bool)).logits
    assert torch.allclose(dream(x), full[:, :81].index_select(-1, dream.token_map), atol=1e-5)


@pytest.mark.parametrize("name", ["llada-llama", "dream-qwen2"])
def test_padded_contexts_give_each_row_what_it_gets_alone(ckpts, sudoku_task, name):
    den, _ = load_denoiser(sudoku_task, ckpts[name])
    g = torch.Generator().manual_seed(0)
    canvas = torch.randint(1, 11, (3, 12), generator=g)
    lens = [5, 2, 0]
    ctx = torch.zeros(3, 5, dtype=torch.long)
    cm = torch.zeros(3, 5, dtype=torch.bool)
    for i, n in enumerate(lens):
        ctx[i, :n] = torch.randint(2, 11, (n,), generator=g)
        cm[i, :n] = True
    batched = den(canvas, context=ctx, context_mask=cm)
    for i, n in enumerate(lens):
        alone = den(canvas[i : i + 1], context=ctx[i : i + 1, :n])
        assert torch.allclose(batched[i], alone[0], atol=1e-5)


def test_gemma_padded_prompts_give_each_row_what_it_gets_alone():
    from constrained.engine.block import BlockConfig, generate_blocks
    from constrained.engine.noise import MaskNoise
    from constrained.engine.samplers import Sampler

    den = GemmaDenoiser(tiny_gemma(canvas=8), self_conditioning=False)
    g = torch.Generator().manual_seed(0)
    lens = [6, 3, 1]
    prompt = torch.zeros(3, 6, dtype=torch.long)
    pmask = torch.zeros(3, 6, dtype=torch.bool)
    for i, n in enumerate(lens):  # padding on the left
        prompt[i, 6 - n :] = torch.randint(3, 60, (n,), generator=g)
        pmask[i, 6 - n :] = True
    canvas = torch.randint(3, 60, (3, 8), generator=g)
    cache = den.new_cache(3)
    den.prefill(prompt, cache, pmask)
    batched = den.canvas_logits(canvas, cache)
    # greedy decoding from an all-[PAD] canvas: deterministic, so a row's tokens can be compared
    cfg = BlockConfig(max_new_tokens=11, sampler=Sampler(threshold=0.5), stop_at_eos=False)
    out, _ = generate_blocks(den, prompt, MaskNoise(den.mask_id), cfg, prompt_mask=pmask)
    assert out.shape == (3, 11)
    for i, n in enumerate(lens):
        c = den.new_cache(1)
        den.prefill(prompt[i : i + 1, 6 - n :], c)
        assert torch.allclose(batched[i], den.canvas_logits(canvas[i : i + 1], c)[0], atol=1e-5)
        alone, _ = generate_blocks(den, prompt[i : i + 1, 6 - n :], MaskNoise(den.mask_id), cfg)
        assert torch.equal(out[i], alone[0])
    # the Solver's path: right-padded contexts of different lengths
    ctx = torch.flip(prompt, [1])
    cm = torch.flip(pmask, [1])
    batched = den(canvas, context=ctx, context_mask=cm)
    for i, n in enumerate(lens):
        assert torch.allclose(batched[i], den(canvas[i : i + 1], context=ctx[i : i + 1, :n])[0], atol=1e-5)


def test_block_decoding_returns_exactly_max_new_tokens():
    from constrained.engine.block import BlockConfig, generate_blocks
    from constrained.engine.noise import UniformNoise
    from constrained.engine.samplers import Sampler

    den = GemmaDenoiser(tiny_gemma(canvas=8))
    prompt = torch.randint(3, 60, (2, 4), generator=torch.Generator().manual_seed(0))
    for n in (1, 7, 9, 20):  # canvases of 8
        for sampler in (Sampler(threshold=0.05), Sampler.diffusion_gemma(steps=3)):
            out, st = generate_blocks(den, prompt, UniformNoise(0), BlockConfig(max_new_tokens=n, sampler=sampler,
                                                                                stop_at_eos=False))
            assert out.shape == (2, n) and st.blocks == -(-n // 8) and st.tokens == 2 * n


def test_solve_batch_rows_match_solving_alone(ckpts, sudoku_task):
    from tests.test_trace import puzzle

    probs = [puzzle(1, 50), puzzle(2, 55), EASY]
    opts = dict(max_passes=6, restarts=False)
    together = solve_batch("sudoku", probs, model=ckpts["dream-qwen2"], **opts)
    for p, r in zip(probs, together):
        alone = solve("sudoku", p, model=ckpts["dream-qwen2"], **opts)
        assert r.tokens == alone.tokens and r.passes == alone.passes


@pytest.mark.parametrize("name", ["llada-llama", "dream-qwen2", "gemma"])
def test_lora_finetune_on_each_kind_by_path(ckpts, tmp_path, name):
    out = tmp_path / "adapter"
    rc = main(["finetune", "sudoku", "--mode", "lora", "--base", str(ckpts[name]), "--out", str(out),
               "--steps", "2", "--set", "train.batch_size=2", "--set", "eval.size=0",
               "--set", "train.warmup_steps=0", "--set", "lora.rank=2", "--merge"])
    assert rc == 0 and (out / "adapter_model.safetensors").exists()
    from safetensors.torch import load_file

    trained = load_file(out / "adapter_model.safetensors")
    lora_b = [v for k, v in trained.items() if "lora_B" in k]
    assert lora_b and any(bool(v.abs().sum() > 0) for v in lora_b)  # B starts at zero: gradients reached it
    res = solve("sudoku", EASY, model=out, max_passes=8)  # the adapter loads onto its base by path
    assert res.valid
    task = load_task("sudoku")
    x = task.encode([EASY]).tokens
    adapted, merged = load_denoiser(task, out)[0], load_denoiser(task, out / "merged")[0]  # merged: tokenizer too
    assert type(merged) is type(load_denoiser(task, ckpts[name])[0])
    with torch.no_grad():
        assert torch.allclose(adapted(x), merged(x), atol=1e-4)


# --- bad checkpoints -------------------------------------------------------------------------------
def test_remote_code_kinds_need_trust_remote_code(tmp_path, sudoku_task):
    for model_type, arch in (("llada", "LLaDAModelLM"), ("Dream", "DreamModel")):
        d = tmp_path / model_type
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"model_type": model_type, "architectures": [arch],
                                                   "auto_map": {"AutoModel": f"modeling.{arch}"}}))
        assert checkpoint_kind(json.loads((d / "config.json").read_text()))[1] is True
        with pytest.raises(ConfigError, match="trust_remote_code=True"):
            load_denoiser(sudoku_task, d)


def test_a_checkpoint_of_no_accepted_kind_names_the_kinds(tmp_path, sudoku_task):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64)).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ModelMismatch, match="diffusion_gemma, masked-lm, llada, dream"):
        load_denoiser(sudoku_task, tmp_path / "gpt2")
    with pytest.raises(ModelMismatch, match="constrained_kind"):
        checkpoint_kind({"model_type": "llama", "constrained_kind": "mdlm"})


def test_pickle_weights_are_refused(tmp_path, sudoku_task):
    model = tiny_standin("llada")
    d = tmp_path / "pickled"
    model.config.save_pretrained(d)
    word_tokenizer().save_pretrained(d)
    torch.save(model.state_dict(), d / "pytorch_model.bin")
    with pytest.raises(ModelMismatch, match="pickle weight files"):
        load_denoiser(sudoku_task, d)


def test_task_token_missing_from_the_tokenizer(tmp_path, sudoku_task):
    d = save_checkpoint(tiny_standin("dream"), tmp_path / "letters",
                        word_tokenizer(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *"ABC"]))
    with pytest.raises(ModelMismatch, match="task token '1' is not in the model's tokenizer"):
        load_denoiser(sudoku_task, d)
    with pytest.raises(ModelMismatch, match="canvas of 81 tokens"):  # sudoku does not fit a canvas of 8
        load_denoiser(sudoku_task, save_checkpoint(tiny_gemma(canvas=8), tmp_path / "small-gemma"))


def test_amino_acid_letters_map_onto_the_tokenizer(ckpts):
    from constrained import load_task

    task = load_task("peptide")
    den, _ = load_denoiser(task, ckpts["llada-llama"])
    words = word_tokenizer().get_vocab()
    for i, tok in enumerate(task.vocab.tokens[2 : 2 + len(task.vocab.content)], start=2):
        assert int(den.token_map[i]) == words[tok]


def test_cli_solve_and_trace_open_checkpoints_by_path_and_refuse_remote_code(ckpts, tmp_path, capsys):
    assert main(["solve", "sudoku", EASY, "--model", str(ckpts["llada-llama"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True
    page = tmp_path / "trace.html"
    assert main(["trace", "sudoku", EASY, "--model", str(ckpts["gemma"]), "--out", str(page),
                 "--search", "local", "--strategy", "entropy-bound", "--steps", "8"]) == 0
    assert page.exists() and page.stat().st_size > 1000
    d = tmp_path / "remote"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "llada", "architectures": ["LLaDAModelLM"]}))
    assert main(["solve", "sudoku", EASY, "--model", str(d)]) == 2  # remote code, not allowed: exit 2
    assert "trust_remote_code" in capsys.readouterr().err


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("use_cache", [True, False])
def test_block_lm_padded_prompts_decode_each_row_as_alone(shift, use_cache):
    from constrained.engine.block import BlockConfig, generate_blocks
    from constrained.engine.blockmodel import BlockDiffusionLM, block_config
    from constrained.engine.noise import MaskNoise
    from constrained.engine.samplers import Sampler

    torch.manual_seed(0)
    model = BlockDiffusionLM(block_config(48, 8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                          intermediate_size=64, max_position_embeddings=96, shift=shift)).eval()
    g = torch.Generator().manual_seed(0)
    lens = [7, 2, 4]
    prompt = torch.zeros(3, 7, dtype=torch.long)
    pmask = torch.zeros(3, 7, dtype=torch.bool)
    for i, n in enumerate(lens):  # padding on the left
        prompt[i, 7 - n :] = torch.randint(3, 48, (n,), generator=g)
        pmask[i, 7 - n :] = True
    cfg = BlockConfig(max_new_tokens=19, sampler=Sampler(threshold=0.3), stop_at_eos=False, use_cache=use_cache)
    out, st = generate_blocks(model, prompt, MaskNoise(model.mask_id), cfg, prompt_mask=pmask)
    assert out.shape == (3, 19) and st.blocks == 3
    for i, n in enumerate(lens):
        alone, _ = generate_blocks(model, prompt[i : i + 1, 7 - n :], MaskNoise(model.mask_id), cfg)
        assert torch.equal(out[i], alone[0])
    with pytest.raises(Exception, match="left"):
        generate_blocks(model, prompt, MaskNoise(model.mask_id), cfg, prompt_mask=torch.flip(pmask, [1]))


def test_gemma_padding_holds_past_the_sliding_window_and_across_commits():
    den = GemmaDenoiser(tiny_gemma(canvas=8), self_conditioning=False)  # sliding window of 16
    g = torch.Generator().manual_seed(0)
    lens, P = [30, 9, 17], 30
    prompt = torch.zeros(3, P, dtype=torch.long)
    pmask = torch.zeros(3, P, dtype=torch.bool)
    for i, n in enumerate(lens):
        prompt[i, P - n :] = torch.randint(3, 60, (n,), generator=g)
        pmask[i, P - n :] = True
    canvas, block = torch.randint(3, 60, (2, 3, 8), generator=g)
    cache = den.new_cache(3)
    den.prefill(prompt, cache, pmask)
    den.commit(block, cache)
    batched = den.canvas_logits(canvas, cache)
    for i, n in enumerate(lens):
        c = den.new_cache(1)
        den.prefill(prompt[i : i + 1, P - n :], c)
        den.commit(block[i : i + 1], c)
        assert torch.allclose(batched[i], den.canvas_logits(canvas[i : i + 1], c)[0], atol=1e-5)
