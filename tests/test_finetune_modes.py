"""Fine-tuning modes: LoRA (peft) adapters on every denoiser kind, validator-reward training,
recipes with unknown-key checks, resume after an interruption, and 2 ranks under torchrun."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_model
from constrained.engine.denoiser import HFMaskedLMDenoiser
from constrained.finetune.lora import (
    LoraSettings,
    apply_adapter,
    apply_lora,
    default_target_modules,
    fingerprint,
)
from constrained.finetune.recipes import load_recipe
from constrained.finetune.reward import group_advantages, validator_reward

from constrained import load_task
from constrained.cli import main
from constrained.errors import ConfigError, ModelMismatch
from constrained.loading import load_denoiser

FAST = ["--set", "train.batch_size=4", "--set", "eval.size=0", "--set", "train.logging_steps=1",
        "--set", "train.warmup_steps=0"]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("base") / "sudoku-tiny"
    tiny_model(load_task("sudoku")).save_pretrained(d)
    return d


def _randomize_lora(model, seed: int = 1) -> None:
    """LoRA's B matrices start at zero (the adapter is a no-op); give them values to test loading."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def _tiny_bert(seed: int = 0):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=30, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    return HFMaskedLMDenoiser(BertForMaskedLM(cfg).eval(), torch.arange(2, 13))


def _tiny_modernbert(seed: int = 0):
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    torch.manual_seed(seed)
    cfg = ModernBertConfig(vocab_size=30, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=128, pad_token_id=0,
                           bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2)
    return HFMaskedLMDenoiser(ModernBertForMaskedLM(cfg).eval(), torch.arange(2, 13))


def _tiny_gemma(seed: int = 0):
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    text = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=16, global_head_dim=16,
                sliding_window=16, max_position_embeddings=128, num_experts=2, top_k_experts=1,
                moe_intermediate_size=32, layer_types=["sliding_attention", "full_attention"],
                pad_token_id=0, eos_token_id=1, bos_token_id=2)
    vision = dict(model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=2, head_dim=8)
    cfg = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=8,
                               image_token_id=63, boi_token_id=62, eoi_token_id=61)
    torch.manual_seed(seed)
    return DiffusionGemmaForBlockDiffusion(cfg).eval()


def _gemma_logits(model, seed: int = 3) -> torch.Tensor:
    from transformers import DynamicCache

    g = torch.Generator().manual_seed(seed)
    prompt, canvas = torch.randint(3, 60, (2, 5), generator=g), torch.randint(3, 60, (2, 8), generator=g)
    text_config = model.config.text_config
    with torch.no_grad():
        return model(input_ids=prompt, decoder_input_ids=canvas,
                     past_key_values=DynamicCache(config=text_config)).logits


def _canvas_logits(model, task) -> torch.Tensor:
    from constrained.engine.denoiser import domain_features, predict_logits

    canvas = task.encode([task.generate(1, seed=5, grade="easy")[0][0]] * 2)
    feats = domain_features(task.domains(canvas, canvas.tokens), canvas.fixed)  # used by domain-reading models
    with torch.no_grad():
        return predict_logits(model.eval(), canvas.tokens, canvas, domains=feats)


# --- recipes ------------------------------------------------------------------------------------
def test_recipe_unknown_lora_or_reward_key_fails_before_training(tmp_path, base_dir, capsys):
    with pytest.raises(ConfigError, match="unknown key lora.rnak"):
        load_recipe("sudoku-x", overrides=["lora.rnak=4"], mode="lora")
    bad = tmp_path / "bad.toml"
    bad.write_text("[reward]\ngroup_size = 4\ntemprature = 0.5\n")
    with pytest.raises(ConfigError, match="unknown key reward.temprature"):
        load_recipe("sudoku", bad, mode="reward")
    with pytest.raises(ConfigError, match="reward.group_size"):
        load_recipe("sudoku", overrides=["reward.group_size=1"], mode="reward")
    with pytest.raises(ConfigError, match="reward.negative_weight"):
        load_recipe("sudoku", overrides=["reward.negative_weight=1.5"], mode="reward")
    out = tmp_path / "out"
    rc = main(["finetune", "sudoku-x", "--mode", "lora", "--base", str(base_dir), "--out", str(out),
               "--set", "lora.alpah=3"])
    assert rc == 2 and "unknown key lora.alpah" in capsys.readouterr().err
    assert not out.exists()


def test_recipe_values_are_typed(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nmax_steps = "100"\n')
    with pytest.raises(ConfigError, match="train.max_steps = '100' is not an integer"):
        load_recipe("sudoku", bad)
    with pytest.raises(ConfigError, match="'maybe' is not a boolean"):
        load_recipe("sudoku", overrides=["model.domain_input=maybe"])
    r = load_recipe("sudoku-x", overrides=["lora.target_modules=query, value", "lora.alpha=8"], mode="lora")
    assert r.lora.target_modules == ["query", "value"] and r.lora.alpha == 8.0 and isinstance(r.lora.alpha, float)
    assert r["train"]["max_steps"] == r.train.max_steps  # a section reads like its TOML table too


def test_mode_specific_recipe_files_are_read_for_lora_and_reward():
    lora = load_recipe("sudoku-x", mode="lora")
    assert lora["lora"]["base"] == "task:sudoku" and lora["lora"]["rank"] >= 1
    reward = load_recipe("sudoku", mode="reward")
    assert reward["reward"]["grade"] == "expert"
    assert load_recipe("sudoku")["lora"]["base"] == "default"  # full mode reads sudoku.toml


# --- LoRA on every kind of denoiser ------------------------------------------------------------------
def test_default_targets_are_chosen_per_architecture():
    task = load_task("sudoku")
    assert default_target_modules(tiny_model(task)) == ["query", "key", "value", "dense"]
    assert default_target_modules(_tiny_bert()) == ["query", "key", "value", "dense"]
    assert default_target_modules(_tiny_modernbert()) == ["Wqkv", "Wo", "Wi"]
    assert default_target_modules(_tiny_gemma()) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    with pytest.raises(ConfigError, match="names no linear layer"):
        apply_lora(tiny_model(task), LoraSettings(target_modules=["q_proj"]))


@pytest.mark.parametrize("build", [_tiny_bert, _tiny_modernbert], ids=["bert", "modernbert"])
def test_adapter_loads_onto_a_tiny_hub_masked_lm(build, tmp_path):
    task = load_task("sudoku")
    trained = apply_lora(build(seed=0), LoraSettings(rank=4))
    _randomize_lora(trained)
    want = _canvas_logits(trained, task)
    trained.save_pretrained(tmp_path / "ad")
    fresh = build(seed=0)
    plain = _canvas_logits(fresh, task)
    loaded = apply_adapter(fresh, tmp_path / "ad")
    assert torch.allclose(_canvas_logits(loaded, task), want, atol=1e-5)
    assert not torch.allclose(plain, want, atol=1e-3)  # the adapter does change the model
    merged = loaded.merge_and_unload()
    assert torch.allclose(_canvas_logits(merged, task), want, atol=1e-4)


def test_adapter_loads_onto_a_tiny_diffusion_gemma(tmp_path):
    trained = apply_lora(_tiny_gemma(seed=0), LoraSettings(rank=4))
    assert sum("lora_A" in n for n, _ in trained.named_parameters()) > 0
    _randomize_lora(trained)
    want = _gemma_logits(trained)
    trained.save_pretrained(tmp_path / "ad")
    fresh = _tiny_gemma(seed=0)
    plain = _gemma_logits(fresh)
    loaded = apply_adapter(fresh, tmp_path / "ad")
    assert torch.allclose(_gemma_logits(loaded), want, atol=1e-4)
    assert not torch.allclose(plain, want, atol=1e-3)


def test_adapter_for_another_base_is_refused(tmp_path):
    from constrained.finetune.lora import write_meta

    a, b = _tiny_bert(seed=0), _tiny_bert(seed=1)
    fp = fingerprint(a)
    assert fp == fingerprint(_tiny_bert(seed=0)) and fp != fingerprint(b)
    ad = apply_lora(a, LoraSettings(rank=2))
    ad.save_pretrained(tmp_path / "ad")
    write_meta(tmp_path / "ad", load_task("sudoku"), "tiny-bert-seed0", fp, "mask", LoraSettings(rank=2),
               ["query"])
    with pytest.raises(ModelMismatch, match="adapter for another base"):
        apply_adapter(b, tmp_path / "ad")


# --- the lora mode end to end ------------------------------------------------------------------------
def test_lora_mode_saves_only_the_adapter_and_loads_through_the_hub(base_dir, tmp_path, capsys):
    out = tmp_path / "x"
    rc = main(["finetune", "sudoku-x", "--mode", "lora", "--base", str(base_dir), "--out", str(out),
               "--steps", "3", "--merge", *FAST, "--set", "lora.rank=2"])
    assert rc == 0, capsys.readouterr().err
    files = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "constrained_adapter.json", "README.md",
            "loss.png", "merged"} <= files
    assert "model.safetensors" not in files  # only the adapter
    card = (out / "README.md").read_text()
    assert "LoRA adapter" in card and "rank 2" in card and "adapter size" in card
    task = load_task("sudoku-x")
    model, noise = load_denoiser(task, out)  # the hub's adapter branch
    assert noise.name == "mask"
    merged, _ = load_denoiser(task, out / "merged")
    assert torch.allclose(_canvas_logits(model, task), _canvas_logits(merged, task), atol=1e-5)
    base, _ = load_denoiser(task, base_dir)
    assert not torch.allclose(_canvas_logits(model, task), _canvas_logits(base, task), atol=1e-6)


def test_lora_base_of_another_vocabulary_fails_before_training(tmp_path, capsys):
    from constrained.engine.model import DenoiserConfig, DenoiserModel

    cfg = DenoiserConfig(vocab_size=6, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, coord_sizes={"row": 9, "col": 9, "box": 9},
                         vocab_tokens=["[PAD]", "[MASK]", "R", "G", "B", "Y"], task="graph-coloring")
    DenoiserModel(cfg).save_pretrained(tmp_path / "colors")
    out = tmp_path / "out"
    rc = main(["finetune", "sudoku-x", "--mode", "lora", "--base", str(tmp_path / "colors"),
               "--out", str(out), "--steps", "2", *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and "trained for vocabulary" in err and "graph-coloring" in err
    assert not (out / "checkpoints").exists()


def test_lora_interrupted_rerun_resumes_from_last_checkpoint(base_dir, tmp_path, monkeypatch, capsys):
    from constrained.finetune.diffusion_trainer import DiffusionTrainer

    out = tmp_path / "run"
    args = ["finetune", "sudoku-x", "--mode", "lora", "--base", str(base_dir), "--out", str(out),
            "--steps", "4", "--set", "train.save_steps=2", *FAST]
    real_step = DiffusionTrainer.training_step

    def interrupted(self, *a, **kw):
        if self.state.global_step >= 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of step 4
        return real_step(self, *a, **kw)

    monkeypatch.setattr(DiffusionTrainer, "training_step", interrupted)
    assert main(args) == 130
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert not (out / "adapter_model.safetensors").exists()
    monkeypatch.setattr(DiffusionTrainer, "training_step", real_step)
    capsys.readouterr()

    # the same folder with another base: an adapter for another base, refused before training
    other = tmp_path / "other"
    tiny_model(load_task("sudoku"), seed=7).save_pretrained(other)
    rc = main(["finetune", "sudoku-x", "--mode", "lora", "--base", str(other), "--out", str(out),
               "--steps", "4", *FAST])
    assert rc == 2 and "adapter for another base" in capsys.readouterr().err

    calls = []

    def counted(self, *a, **kw):
        calls.append(self.state.global_step)
        return real_step(self, *a, **kw)

    monkeypatch.setattr(DiffusionTrainer, "training_step", counted)
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "resuming from" in printed and "checkpoint-2" in printed
    assert calls == [2, 3]  # only steps 3 and 4 were trained again
    log = json.loads((out / "training_log.json").read_text())
    assert [h["step"] for h in log if "loss" in h] == [1, 2, 3, 4]  # history restored from the checkpoint
    assert (out / "adapter_model.safetensors").exists()


# --- reward mode ----------------------------------------------------------------------------------
def test_validator_reward_scores_solved_above_broken():
    from conftest import EASY, EASY_SOLUTION

    task = load_task("sudoku")
    canvas = task.encode([EASY, EASY])
    good = task.encode([EASY_SOLUTION]).tokens[0]
    broken = good.clone()
    free = (~canvas.fixed[0]).nonzero().squeeze(-1)
    broken[free[0]], broken[free[1]] = good[free[1]], good[free[0]]  # swap two different cells
    if torch.equal(broken, good):
        broken[free[0]] = (good[free[0]] - 2 + 1) % 9 + 2
    r, solved = validator_reward(task, canvas, torch.stack([good, broken]), solved_bonus=1.0)
    assert solved.tolist() == [True, False]
    assert r[0] == pytest.approx(2.0) and 0 < r[1] < 1


def test_group_advantages_are_relative_within_each_group():
    r = torch.tensor([1.0, 0.0, 0.5, 0.5, 0.2, 0.2, 0.2, 0.2])
    a = group_advantages(r, group_size=4, clip=3.0)
    assert a[:4].sum() == pytest.approx(0.0, abs=1e-5) and a[0] > 0 > a[1]
    assert torch.equal(a[4:], torch.zeros(4))  # equal rewards teach nothing


def test_reward_mode_trains_and_writes_before_after_card(base_dir, tmp_path, capsys):
    from constrained.finetune.reward import finetune_reward

    out = tmp_path / "rw"
    res = finetune_reward("sudoku", out=out, init=str(base_dir), progress=False, overrides=[
        "train.max_steps=2", "train.batch_size=2", "train.learning_rate=1e-3", "train.warmup_steps=0",
        "train.logging_steps=1", "reward.group_size=3", "reward.pool_size=4", "reward.grade=easy",
        "reward.max_passes=4", "reward.negative_weight=1", "eval.size=2", "eval.steps=0"])
    assert res["steps"] == 2 and "model_only_solve_rate" in res["scores_before"]
    log = json.loads((out / "training_log.json").read_text())
    rows = [h for h in log if "loss" in h]
    assert rows and all("rollout_reward" in h and h["grad_norm"] > 0 for h in rows)
    from safetensors.torch import load_file

    new = load_file(out / "model.safetensors")
    old = load_file(base_dir / "model.safetensors")
    assert any(not torch.equal(new[k], old[k]) for k in old)  # the update moved the weights
    assert "| before | model only |" in (out / "README.md").read_text()


# --- wall time over a resume --------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["full", "lora", "reward"])
def test_wall_time_survives_a_resume_in_every_mode(mode, base_dir, tmp_path):
    from constrained.finetune.full import finetune
    from constrained.finetune.lora import finetune_lora
    from constrained.finetune.reward import finetune_reward

    out = tmp_path / mode
    tiny = ["train.batch_size=2", "train.warmup_steps=0", "train.logging_steps=1", "train.save_steps=1",
            "eval.size=0"]
    run = {
        "full": lambda o: finetune("sudoku", out=out, progress=False, overrides=o + [
            "model.hidden_size=16", "model.num_hidden_layers=1", "model.num_attention_heads=2",
            "model.intermediate_size=16"]),
        "lora": lambda o: finetune_lora("sudoku-x", out=out, base=str(base_dir), progress=False,
                                        overrides=o + ["lora.rank=2"]),
        "reward": lambda o: finetune_reward("sudoku", out=out, init=str(base_dir), progress=False, overrides=o + [
            "reward.group_size=2", "reward.pool_size=2", "reward.grade=easy", "reward.max_passes=2"]),
    }[mode]
    run(tiny + ["train.max_steps=1"])
    clock = out / "checkpoints" / "checkpoint-1" / "wall_seconds.json"
    assert clock.exists()  # each checkpoint records the training time so far
    clock.write_text(json.dumps({"seconds": 600.0}))  # as if step 1 had taken ten minutes
    res = run(tiny + ["train.max_steps=2"])  # resumes from checkpoint-1
    assert res["steps"] == 2 and 600 <= res["wall_seconds"] < 900
    assert re.search(r"wall time: 1\d\.\d min", (out / "README.md").read_text())


# --- many processes ------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not installed")
def _free_port() -> int:
    """A TCP port free now (a fixed one can still be held by an earlier run's socket)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_on_cpu_with_gloo(base_dir, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    # this interpreter's torchrun, so the ranks import the checkout under test (not another install)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "constrained.cli", "finetune", "sudoku-x", "--mode", "lora", "--base", str(base_dir),
           "--out", str(out),
           "--steps", "2", *FAST]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count('"world_size": 2') == 2  # both ranks trained, in one process group
    assert (out / "adapter_model.safetensors").exists()


def test_shipped_sudoku_x_adapter_loads_onto_the_shipped_sudoku_model():
    from constrained.shipped import MODELS_DIR

    folder = MODELS_DIR / "sudoku-x"
    if not (folder / "adapter_config.json").exists() or not (MODELS_DIR / "sudoku" / "config.json").exists():
        pytest.skip("the Sudoku-X adapter or the Sudoku model is not shipped in this checkout")
    task = load_task("sudoku-x")
    assert task.default_model == "sudoku-x"
    model, noise = load_denoiser(task)  # a changed Sudoku model would fail here: retrain the adapter
    base, _ = load_denoiser(task, MODELS_DIR / "sudoku")
    assert not torch.allclose(_canvas_logits(model, task), _canvas_logits(base, task), atol=1e-6)


def test_training_evaluation_uses_the_task_solver_defaults():
    from types import MappingProxyType

    from conftest import EASY
    from constrained.engine import make_noise
    from constrained.finetune.evaluation import evaluate

    task = load_task("sudoku")
    task.solver_defaults = MappingProxyType({"max_passes": 2})  # this instance only
    model = tiny_model(task)
    scores = evaluate(task, model, make_noise("mask", task.vocab.mask_id), [EASY, EASY])
    assert scores["full_mean_passes"] <= 2 and scores["model_only_mean_passes"] <= 2
    scores = evaluate(task, model, make_noise("mask", task.vocab.mask_id), [EASY], max_passes=3)
    assert scores["full_mean_passes"] <= 3  # explicit options win
