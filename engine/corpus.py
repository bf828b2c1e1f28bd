"""The text corpus and tokenizer of the engine's language models, and fill-in-the-middle.

The block-diffusion model and its autoregressive baseline (``engine/blockmodel.py``,
``engine/ar.py``) are trained on the same tokens: the Python source corpus the code tasks
also read (:mod:`constrained.pycorpus`: modules under the roots the caller passes in, by
default the standard library and the installed packages on this machine, nothing downloaded,
whole modules held out by the hash of their path), in the code tasks' byte-level BPE
tokenizer (its path passed in; ``constrained.pycorpus.TOKENIZER_PATH`` is the shipped one).
The two models therefore share their vocabulary and held-out split with the code-infilling
denoiser, so the AR model doubles as its infilling baseline (prefix-suffix-middle prompting,
:func:`fim_permute`). The engine reads no task: the corpus roots and the tokenizer come from
its callers.

Token ids: ``[PAD]`` = 0, ``[MASK]`` = 1, the BPE tokens, then the code tokenizer's specials
(``[SEP] [BOF] [EOF] [PRE] [SUF] [MID] [EOS]``); ``[EOS]`` ends each file in the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from constrained.errors import ConfigError
from constrained.pycorpus import load_corpus as read_sources

PAD, MASK, EOS = "[PAD]", "[MASK]", "[EOS]"
#: the fill-in-the-middle sentinels (the code tokenizer's): prefix, suffix, middle
FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE = "[PRE]", "[SUF]", "[MID]"


@dataclass
class Corpus:
    """Train / held-out texts, split by module (the code tasks' split)."""

    train: list[str]
    heldout: list[str]
    source: str


def load_corpus(roots: Sequence[tuple[str, Path]], max_chars: int = 8_000_000,
                heldout_chars: int = 1_000_000) -> Corpus:
    """The Python modules under ``roots`` ((name, directory) pairs, e.g.
    ``constrained.pycorpus.corpus_roots()``): up to ``max_chars`` of training modules,
    ``heldout_chars`` of held-out ones (those that parse), both in the corpus's deterministic order.
    Raises ConfigError when the roots hold no Python sources."""
    roots = [(name, Path(root)) for name, root in roots]
    if not roots:
        raise ConfigError("no corpus roots given: pass (name, directory) pairs")
    train = [f.text for f in read_sources("train", max_chars=max_chars, roots=roots)]
    held = [f.text for f in read_sources("heldout", max_chars=heldout_chars, require_parse=True, roots=roots)]
    where = ", ".join(str(r) for _, r in roots)
    return Corpus(train=train, heldout=held, source=f"code-task corpus ({where})")


def load_tokenizer(path: str | Path):
    """The tokenizer saved at ``path`` (a ``tokenizer.json`` or a model folder holding one; the code
    tasks' shipped one is ``constrained.pycorpus.TOKENIZER_PATH``). It must hold [PAD]=0, [MASK]=1
    and [EOS]; otherwise, or when there is none, ConfigError."""
    from tokenizers import Tokenizer

    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.exists():
        raise ConfigError(f"no tokenizer at {file}")
    tok = Tokenizer.from_file(str(file))
    if tok.token_to_id(PAD) != 0 or tok.token_to_id(MASK) != 1 or tok.token_to_id(EOS) is None:
        raise ConfigError(f"tokenizer {file} must hold {PAD} at id 0, {MASK} at id 1 and an {EOS} token")
    return tok


def special_ids(tok) -> list[int]:
    """Ids of the tokenizer's added special tokens other than [EOS] ([PAD], [MASK], [SEP], [PRE], ...):
    context-only tokens a generated canvas never holds."""
    eos = tok.token_to_id(EOS)
    return sorted(i for i, t in tok.get_added_tokens_decoder().items() if i != eos and t.special)


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


def fim_permute(x: torch.Tensor, rate: float, rng: np.random.Generator, prefix_id: int, suffix_id: int,
                middle_id: int, eos_id: int) -> torch.Tensor:
    """Fill-in-the-middle augmentation (Bavarian et al. 2022, as in StarCoder), prefix-suffix-middle order.

    x [B, S] windows -> [B, S]: each row, with probability ``rate``, becomes
    ``[PRE] prefix [SUF] suffix [MID] middle [EOS]`` from its first S - 4 tokens cut at two uniform
    random points (so ``middle`` may be empty); the other rows are left as they are. Trained with the
    ordinary next-token loss, the model learns to write a middle given both sides and to end it with [EOS].
    """
    B, S = x.shape
    if S < 5:
        raise ConfigError(f"fill-in-the-middle needs windows of at least 5 tokens, got {S}")
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"fim rate must be in [0, 1], got {rate}")
    out = x.clone()
    n = S - 4
    for b in np.flatnonzero(rng.random(B) < rate):
        i, j = sorted(int(v) for v in rng.integers(0, n + 1, size=2))
        row = x[b, :n]
        out[b] = torch.cat([x.new_tensor([prefix_id]), row[:i], x.new_tensor([suffix_id]), row[j:],
                            x.new_tensor([middle_id]), row[i:j], x.new_tensor([eos_id])])
    return out
