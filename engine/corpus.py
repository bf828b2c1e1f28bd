"""A text corpus from the machine and a BPE tokenizer for the engine's language models.

The block-diffusion model and its autoregressive baseline (``engine/blockmodel.py``,
``engine/ar.py``) are trained on the same tokens: the Python standard library's own
source files (they ship with every Python install, nothing is downloaded), split
into a training and a held-out part by file, tokenized with a byte-level BPE
trained here with the ``tokenizers`` library.

Token ids 0, 1, 2 are ``[PAD]``, ``[MASK]``, ``[EOS]`` as in every vocab of the project
(``[PAD]`` = 0, ``[MASK]`` = 1); ``[EOS]`` ends each file.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from constrained.errors import ConfigError

PAD, MASK, EOS = "[PAD]", "[MASK]", "[EOS]"
SPECIALS = (PAD, MASK, EOS)


def stdlib_files(root: str | Path | None = None) -> list[Path]:
    """The ``*.py`` files at the top of the standard library (sorted, deterministic)."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    if not files:
        raise ConfigError(f"no Python sources found under {root}")
    return files


@dataclass
class Corpus:
    """Train / held-out texts, split by file (every 10th file is held out)."""

    train: list[str]
    heldout: list[str]
    source: str


def load_corpus(root: str | Path | None = None, max_chars: int = 3_000_000) -> Corpus:
    files = stdlib_files(root)
    train, held = [], []
    total = 0
    for i, f in enumerate(files):
        text = f.read_text(encoding="utf-8", errors="replace")
        (held if i % 10 == 9 else train).append(text)
        total += len(text)
        if total >= max_chars:
            break
    return Corpus(train=train, heldout=held, source=str(files[0].parent))


def build_tokenizer(texts: list[str], vocab_size: int = 1024):
    """A byte-level BPE (``tokenizers.Tokenizer``) with [PAD]=0, [MASK]=1, [EOS]=2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    for i, s in enumerate(SPECIALS):
        if tok.token_to_id(s) != i:
            raise ConfigError(f"tokenizer put {s} at id {tok.token_to_id(s)}, expected {i}")
    return tok


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer

    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.exists():
        raise ConfigError(f"no tokenizer at {file}")
    return Tokenizer.from_file(str(file))


def encode_texts(tok, texts: list[str]) -> torch.Tensor:
    """All texts as one long stream of ids, each text followed by [EOS]. -> [T] long."""
    eos = tok.token_to_id(EOS)
    ids: list[int] = []
    for enc in tok.encode_batch(texts):
        ids.extend(enc.ids)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def sample_windows(stream: torch.Tensor, n: int, length: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` random windows of ``length`` tokens from ``stream`` -> [n, length]."""
    if stream.numel() <= length:
        raise ConfigError(f"token stream of {stream.numel()} tokens is shorter than a window of {length}")
    starts = rng.integers(0, stream.numel() - length, size=n)
    return torch.stack([stream[s : s + length] for s in starts])
