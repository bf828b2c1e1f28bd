"""Safetensors only: pickle weight files are never loaded; a checkpoint that does not fit is a
ModelMismatch naming the file (exit 2 from the CLI), never a traceback or random weights."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import EASY, tiny_model
from constrained.finetune.lora import LoraSettings, apply_lora
from safetensors.torch import load_file, save_file

from constrained import ModelMismatch, load_task
from constrained.adapters import apply_adapter, load_adapter
from constrained.cli import main
from constrained.loading import load_denoiser


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ckpt") / "model"
    tiny_model(load_task("sudoku")).save_pretrained(d)
    return d


@pytest.fixture
def no_unpickling(monkeypatch):
    """Any pickle load during the test fails it."""
    def refuse(*a, **k):
        raise AssertionError("a pickle load was attempted")
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def _adapter_dir(saved: Path, tmp_path: Path) -> Path:
    task = load_task("sudoku")
    base = tiny_model(task)
    ad = apply_lora(base, LoraSettings(rank=2))
    out = tmp_path / "ad"
    ad.save_pretrained(out)
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(saved)
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out


def test_loading_an_adapter_does_not_import_finetune(saved, tmp_path):
    ad = _adapter_dir(saved, tmp_path)
    code = ("import sys; from constrained import load_task; from constrained.loading import load_denoiser; "
            f"load_denoiser(load_task('sudoku'), {str(ad)!r}); "
            "print(sorted(m for m in sys.modules if m.startswith('constrained.finetune')))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().splitlines()[-1] == "[]"  # inference loads adapters without the training package


def test_an_adapter_holding_only_adapter_model_bin_is_refused(saved, tmp_path, no_unpickling, capsys):
    ad = _adapter_dir(saved, tmp_path)
    weights = load_file(ad / "adapter_model.safetensors")
    (ad / "adapter_model.safetensors").unlink()
    with open(ad / "adapter_model.bin", "wb") as f:  # what peft would torch.load
        f.write(b"not even looked at")
    del weights
    with pytest.raises(ModelMismatch, match=r"adapter_model\.bin: pickle weight files are not loaded"):
        load_adapter(ad, load_task("sudoku"))
    with pytest.raises(ModelMismatch, match="pickle"):
        apply_adapter(tiny_model(load_task("sudoku")), ad, check=False)
    rc = main(["solve", "sudoku", EASY, "--model", str(ad)])
    err = capsys.readouterr().err
    assert rc == 2 and "adapter_model.bin" in err and "Traceback" not in err


def test_a_full_model_folder_with_only_a_pickle_is_refused(saved, tmp_path, no_unpickling):
    d = tmp_path / "m"
    shutil.copytree(saved, d)
    (d / "model.safetensors").rename(d / "pytorch_model.bin")
    with pytest.raises(ModelMismatch, match=r"pytorch_model\.bin: pickle weight files are not loaded"):
        load_denoiser(load_task("sudoku"), d)


def _break(d: Path, how: str) -> None:
    f = d / "model.safetensors"
    if how == "truncated":
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 2])
    elif how == "corrupt":
        f.write_bytes(b"\x07" * 64)
    elif how == "empty":
        f.write_bytes(b"")
    elif how == "shape":
        cfg = json.loads((d / "config.json").read_text())
        cfg["intermediate_size"] = 48
        (d / "config.json").write_text(json.dumps(cfg))
    elif how == "missing-tensor":
        t = load_file(f)
        del t[sorted(t)[0]]
        save_file(t, f, metadata={"format": "pt"})
    elif how == "config-not-json":
        (d / "config.json").write_text("{")


@pytest.mark.parametrize("how", ["truncated", "corrupt", "empty", "shape", "missing-tensor", "config-not-json"])
def test_a_broken_checkpoint_is_a_model_mismatch_naming_the_file(saved, tmp_path, how, no_unpickling, capsys):
    d = tmp_path / "m"
    shutil.copytree(saved, d)
    _break(d, how)
    name = "config.json" if how == "config-not-json" else "model.safetensors"
    with pytest.raises(ModelMismatch, match=str(d / name)):
        load_denoiser(load_task("sudoku"), d)
    rc = main(["solve", "sudoku", EASY, "--model", str(d)])
    err = capsys.readouterr().err
    assert rc == 2 and str(d / name) in err and "Traceback" not in err
    msg = [ln for ln in err.splitlines() if "error" in ln.lower()]
    assert len(msg) == 1 and str(d / name) in msg[0], err  # one line (progress bars aside)


def test_a_truncated_adapter_is_a_model_mismatch_naming_it(saved, tmp_path, no_unpickling):
    ad = _adapter_dir(saved, tmp_path)
    f = ad / "adapter_model.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(ModelMismatch, match=str(f)):
        load_adapter(ad, load_task("sudoku"))


def test_the_intact_checkpoint_still_loads(saved, no_unpickling):
    model, _ = load_denoiser(load_task("sudoku"), saved)
    assert sum(p.numel() for p in model.parameters()) > 0
