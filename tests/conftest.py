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


# --- hub-style checkpoints (DiffusionGemma, LLaDA / Dream stand-ins) built here ---------------------
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]  # ids 0..4
WORDS = SPECIALS + list("0123456789") + list("ACDEFGHIKLMNPQRSTVWY")  # 35 tokens


def word_tokenizer(tokens: list[str] = WORDS, vocab_size: int = 64):
    """A fast word-level tokenizer over ``tokens`` (one token per symbol), padded with filler tokens
    to ``vocab_size``; <pad>/<eos>/<bos>/<unk>/<mask> are its specials."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    full = list(tokens) + [f"<x{i}>" for i in range(vocab_size - len(tokens))]
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(full)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                                   unk_token="<unk>", mask_token="<mask>")


def tiny_gemma(canvas: int = 8, seed: int = 0, vocab_size: int = 64):
    """A random 2-layer DiffusionGemmaForBlockDiffusion (pad 0, eos 1, bos 2; image tokens at the top)."""
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    V = vocab_size
    text = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=16, global_head_dim=16,
                sliding_window=16, max_position_embeddings=256, num_experts=2, top_k_experts=1,
                moe_intermediate_size=32, layer_types=["sliding_attention", "full_attention"], pad_token_id=0,
                eos_token_id=1, bos_token_id=2)
    vision = dict(model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=2, head_dim=8)
    cfg = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas,
                               image_token_id=V - 1, boi_token_id=V - 2, eoi_token_id=V - 3)
    torch.manual_seed(seed)
    return DiffusionGemmaForBlockDiffusion(cfg).eval()


def tiny_standin(kind: str, arch: str = "llama", seed: int = 0, vocab_size: int = 64):
    """A LLaDA (``kind="llada"``) or Dream (``"dream"``) stand-in: a random transformers causal LM
    whose config is marked ``constrained_kind``, run bidirectionally by DiffusionLMDenoiser."""
    from constrained.engine.difflm import standin_config
    from transformers import AutoModelForCausalLM

    cfg = standin_config(kind, arch, vocab_size=vocab_size, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    cfg.mask_token_id = 4
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg).eval()


def save_checkpoint(model, path, tokenizer=None):
    """save_pretrained (safetensors) with a word-level tokenizer: a hub-style checkpoint folder."""
    model.save_pretrained(path)
    (tokenizer or word_tokenizer(vocab_size=model.config.get_text_config().vocab_size)).save_pretrained(path)
    return path
