"""The prefix-suffix-middle block-diffusion denoiser (engine/infill.py): it reads the code tasks'
context as a causal [PRE] prefix [SUF] suffix [MID] prompt, ignores padding, starts from an AR
model's weights, trains through the task's recipe and loads like any shipped denoiser."""

import pytest
import torch
from constrained.engine.blockmodel import block_mask
from constrained.engine.infill import PSMDenoiser, psm_denoiser_from_ar
from transformers import LlamaConfig, LlamaForCausalLM

from constrained import ConfigError, load_task
from constrained.loading import load_denoiser
from constrained.solver import Solver, SolverConfig

PROBLEMS = ["def add(a, b):\n    <FILL>\n\n\nprint(add(1, 2))\n", "import os\nx = <FILL>\n"]


@pytest.fixture(scope="module")
def task():
    return load_task("code-infill")


@pytest.fixture(scope="module")
def ar_dir(tmp_path_factory, task):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(task.vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=512,
                      pad_token_id=0, eos_token_id=task.vocab.id("[EOS]"), bos_token_id=None,
                      tie_word_embeddings=True)
    d = tmp_path_factory.mktemp("ar")
    LlamaForCausalLM(cfg).save_pretrained(d, safe_serialization=True)
    return d


@pytest.fixture(scope="module")
def model(ar_dir, task):
    return psm_denoiser_from_ar(ar_dir, task, task.hole_tokens).eval()


def test_starts_from_every_weight_of_the_ar_model(ar_dir, model):
    ar = LlamaForCausalLM.from_pretrained(ar_dir, use_safetensors=True)
    mine = model.state_dict()
    for k, v in ar.state_dict().items():
        assert torch.equal(mine[k], v), k
    assert model.config.shift and model.config.canvas_length == 64


@torch.no_grad()
def test_context_becomes_a_psm_prompt_and_padding_changes_nothing(model, task):
    canvas = task.encode(PROBLEMS)
    tokens = canvas.tokens.clone()
    tokens[1, :3] = torch.tensor(task.encode_hole("len(os"))
    both = model(input_ids=tokens, context=canvas.context).logits
    alone = model(input_ids=tokens[1:], context=canvas.context[1:]).logits
    assert both.shape == (2, 64, len(task.vocab))
    assert torch.allclose(both[1], alone[0], atol=1e-5)  # batching (other rows' padding) changes nothing
    # the same as the unpadded sequence [PRE] prefix [SUF] suffix [MID] canvas under the block mask
    ctx = canvas.context[1].tolist()
    sep = ctx.index(task.vocab.id("[SEP]"))
    pre = [t for t in ctx[:sep] if t]
    suf = [t for t in ctx[sep + 1:] if t]
    v = task.vocab
    seq = torch.tensor([[v.id("[PRE]"), *pre, v.id("[SUF]"), *suf, v.id("[MID]"), *tokens[1].tolist()]])
    T = len(pre) + len(suf) + 3
    out = model.model(input_ids=seq, position_ids=torch.arange(seq.shape[1])[None],
                      attention_mask=block_mask(T - 1, 65), use_cache=False)
    ref = model.lm_head(out.last_hidden_state[:, T - 1: T - 1 + 64])
    assert torch.allclose(ref[0], alone[0], atol=1e-4)
    # the suffix is read: another suffix changes the hole's logits
    other = task.encode(["import os\nx = <FILL>\nprint(x, os.sep)\n"])
    assert not torch.allclose(model(input_ids=tokens[1:], context=other.context).logits, alone, atol=1e-3)


def test_needs_a_context_with_one_separator(model, task):
    canvas = task.encode(PROBLEMS[:1])
    with pytest.raises(ValueError, match="needs the context"):
        model(input_ids=canvas.tokens)
    bad = canvas.context.clone()
    bad[0, bad[0] == task.vocab.id("[SEP]")] = 5
    with pytest.raises(ValueError, match="trained with prefix_tokens=128"):
        model(input_ids=canvas.tokens, context=bad)
    other = load_task("code-infill", prefix_tokens=64)  # another layout than the model's
    with pytest.raises(ValueError, match="at column 129"):
        model(input_ids=canvas.tokens, context=other.encode(PROBLEMS[:1]).context)
    # source text holding the string "[SEP]" does not confuse the split
    p = "s = '[SEP]'\nx = <FILL>\ny = '[SEP]'\n"
    c = task.encode([p])
    assert int((c.context == task.vocab.id("[SEP]")).sum()) == 3
    assert torch.isfinite(model(input_ids=c.tokens, context=c.context).logits).all()


def test_init_from_ar_refuses_other_models(tmp_path, task):
    with pytest.raises(ConfigError, match="no config.json"):
        psm_denoiser_from_ar(tmp_path, task, 64)
    cfg = LlamaConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path, safe_serialization=True)
    with pytest.raises(ConfigError, match="has 100 token ids"):
        psm_denoiser_from_ar(tmp_path, task, 64)


def test_saved_model_loads_as_the_tasks_denoiser_and_solves(model, task, tmp_path):
    model.save_pretrained(tmp_path, safe_serialization=True)
    loaded, noise = load_denoiser(task, tmp_path)
    assert isinstance(loaded, PSMDenoiser) and noise.name == "mask"
    canvas = task.encode(PROBLEMS)
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=canvas.tokens, context=canvas.context).logits,
                              model(input_ids=canvas.tokens, context=canvas.context).logits, atol=1e-6)
    res = Solver(task, loaded, noise, SolverConfig(max_passes=4)).run(canvas, PROBLEMS)
    assert [r.solution.startswith(p.split("<FILL>")[0]) for r, p in zip(res, PROBLEMS)] == [True, True]
    with pytest.raises(Exception, match="vocabulary"):
        load_denoiser(load_task("sudoku"), tmp_path)


def test_recipe_builds_it_and_checks_its_settings(ar_dir, task):
    from constrained.finetune import load_recipe
    from constrained.finetune.full import build_model

    recipe = load_recipe("code-infill", overrides=[f"model.init_from_ar={ar_dir}"])
    assert recipe["model"]["arch"] == "psm-block"
    m = build_model(task, recipe)
    assert isinstance(m, PSMDenoiser) and m.config.task == "code-infill"
    with pytest.raises(ConfigError, match="set model.init_from_ar"):
        load_recipe("code-infill", overrides=["model.init_from_ar="])
    with pytest.raises(ConfigError, match="model.arch must be"):
        load_recipe("code-infill", overrides=["model.arch=gpt"])
    with pytest.raises(ConfigError, match="context_noise needs model.arch = 'denoiser'"):
        load_recipe("code-infill", overrides=["train.context_noise=0.5"])


@torch.no_grad()
def test_a_few_training_steps_lower_the_loss(ar_dir, task):
    import numpy as np
    from constrained.engine.noise import make_noise
    from constrained.finetune import DiffusionCollator, DiffusionTrainer
    from constrained.tasks.code_corpus import SourceFile

    m = psm_denoiser_from_ar(ar_dir, task, task.hole_tokens)
    text = "import os\n\n\ndef f(x):\n    y = x + 1\n    return os.path.join(y, 'a')\n" * 3
    t2 = load_task("code-infill")
    t2._train = [SourceFile("stdlib/fake.py", None, text)]
    rng = np.random.default_rng(0)
    noise = make_noise("mask", task.vocab.mask_id)
    batch = DiffusionCollator(t2, noise, seed=0)([t2.training_example(rng) for _ in range(8)])
    trainer = DiffusionTrainer.__new__(DiffusionTrainer)
    trainer.noise = noise
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    m.train()
    first = float(trainer.compute_loss(m, batch))
    with torch.enable_grad():
        for _ in range(15):
            loss = trainer.compute_loss(m, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert float(trainer.compute_loss(m, batch)) < 0.7 * first


def test_finetune_init_continues_a_saved_psm_denoiser(model, task, tmp_path):
    from constrained.finetune import load_recipe
    from constrained.finetune.full import build_model

    from constrained.errors import ModelMismatch

    model.save_pretrained(tmp_path, safe_serialization=True)
    again = build_model(task, load_recipe("code-infill"), init=str(tmp_path))
    assert isinstance(again, PSMDenoiser) and again.training
    assert torch.equal(again.lm_head.weight, model.lm_head.weight)
    with pytest.raises(ModelMismatch, match="does not exist"):
        build_model(task, load_recipe("code-infill"), init=str(tmp_path / "missing"))


def test_lora_adapter_trains_on_and_reloads_onto_a_psm_denoiser(ar_dir, task, tmp_path):
    from constrained.finetune.lora import LoraSettings, apply_adapter, apply_lora, default_target_modules

    base = psm_denoiser_from_ar(ar_dir, task, task.hole_tokens).eval()
    assert default_target_modules(base) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    canvas = task.encode(PROBLEMS)
    with torch.no_grad():
        before = base(input_ids=canvas.tokens, context=canvas.context).logits.clone()
    peft = apply_lora(base, LoraSettings(rank=4, alpha=8.0))
    trainable = [n for n, p in peft.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    for n, p in peft.named_parameters():  # move the adapter off zero so it changes the output
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)
    peft.save_pretrained(tmp_path)
    fresh = psm_denoiser_from_ar(ar_dir, task, task.hole_tokens).eval()
    merged = apply_adapter(fresh, tmp_path, check=False).merge_and_unload().eval()
    with torch.no_grad():
        after = merged(input_ids=canvas.tokens, context=canvas.context).logits
        direct = peft(input_ids=canvas.tokens, context=canvas.context).logits
    assert not torch.allclose(after, before, atol=1e-3) and torch.allclose(after, direct, atol=1e-4)
