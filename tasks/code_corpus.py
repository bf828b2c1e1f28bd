"""The code tasks' corpus, their tokenizer, and how holes are cut.

The corpus is real Python source already on the machine, split by module
(:mod:`constrained.pycorpus`: the standard library and the installed packages, whole
modules held out by the SHA-1 of their path; its names are re-exported here).

The tokenizer is a byte-level BPE trained with the ``tokenizers`` library on the
training split. Its ids ARE the task's vocabulary ids: ``[PAD]`` = 0, ``[MASK]`` = 1,
then the BPE tokens (the task's content tokens), then the specials the tasks and the
autoregressive baseline use (``EXTRA``: a hole separator, file bounds, prefix /
suffix / middle markers for PSM prompting, end of sequence).

Everything here is a plain function so that a baseline (an autoregressive model of
the same size on the same data) can share it::

    from constrained.tasks.code_corpus import load_corpus, load_tokenizer, code_vocab
    train = load_corpus("train")            # list[SourceFile]
    tok = load_tokenizer()                  # tokenizers.Tokenizer (the shipped one)
    vocab = code_vocab(tok)                 # constrained Vocab, ids == tokenizer ids
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from constrained.errors import ConfigError
from constrained.pycorpus import (
    HELDOUT_PERCENT,
    MAX_BYTES,
    MIN_BYTES,
    SKIP_DIRS,
    TOKENIZER_PATH,
    SourceFile,
    Split,
    corpus_files,
    corpus_roots,
    load_corpus,
    parses,
    split_of,
)
from constrained.vocab import MASK, PAD, Vocab

__all__ = [  # the corpus's names (constrained.pycorpus) are part of this module's interface
    "HELDOUT_PERCENT", "MAX_BYTES", "MIN_BYTES", "SKIP_DIRS", "TOKENIZER_PATH", "SourceFile", "Split",
    "corpus_files", "corpus_roots", "load_corpus", "parses", "split_of",
    "SEP", "BOF", "EOF", "PRE", "SUF", "MID", "EOS", "EXTRA", "build_tokenizer", "check_tokenizer",
    "load_tokenizer", "code_vocab", "token_bytes", "HoleKind", "Hole", "cut_hole", "iter_holes",
]

#: specials after the BPE tokens, in id order (context-only: a canvas never holds them)
SEP, BOF, EOF, PRE, SUF, MID, EOS = "[SEP]", "[BOF]", "[EOF]", "[PRE]", "[SUF]", "[MID]", "[EOS]"
EXTRA = (SEP, BOF, EOF, PRE, SUF, MID, EOS)


# ---------------------------------------------------------------------------------------
# tokenizer
# ---------------------------------------------------------------------------------------
def build_tokenizer(vocab_size: int = 1024, texts: list[str] | None = None, max_chars: int = 8_000_000,
                    out: str | Path | None = None):
    """Train the byte-level BPE on the training split (or ``texts``); save it to ``out``.

    Ids: ``[PAD]`` 0, ``[MASK]`` 1, BPE tokens, then ``EXTRA``. Returns the ``tokenizers.Tokenizer``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if texts is None:
        texts = [f.text for f in load_corpus("train", max_chars=max_chars)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(EXTRA), special_tokens=[PAD, MASK],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens(list(EXTRA))
    check_tokenizer(tok)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        tok.save(str(out))
    return tok


def check_tokenizer(tok) -> None:
    if tok.token_to_id(PAD) != 0 or tok.token_to_id(MASK) != 1:
        raise ConfigError(f"tokenizer must put {PAD} at id 0 and {MASK} at id 1")
    n = tok.get_vocab_size()
    for i, s in enumerate(EXTRA):
        if tok.token_to_id(s) != n - len(EXTRA) + i:
            raise ConfigError(f"tokenizer must end with the specials {EXTRA}; {s} is at {tok.token_to_id(s)}")


def load_tokenizer(path: str | Path | None = None):
    """The shipped tokenizer (``constrained/models/code/tokenizer.json``) or the one at ``path``."""
    from tokenizers import Tokenizer

    file = Path(path) if path else TOKENIZER_PATH
    if file.is_dir():
        file = file / "tokenizer.json"
    if not file.exists():
        raise ConfigError(f"no code tokenizer at {file}; build it with "
                          "constrained.tasks.code_corpus.build_tokenizer(out=TOKENIZER_PATH)")
    tok = Tokenizer.from_file(str(file))
    check_tokenizer(tok)
    return tok


def code_vocab(tok) -> Vocab:
    """The task vocabulary of a tokenizer: ids are the tokenizer's own ids."""
    n = tok.get_vocab_size()
    content = tuple(tok.id_to_token(i) for i in range(2, n - len(EXTRA)))
    vocab = Vocab(content, EXTRA)
    if len(vocab) != n:
        raise ConfigError(f"tokenizer of {n} ids gives a vocab of {len(vocab)}")
    return vocab


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map used by the byte-level pre-tokenizer."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def token_bytes(vocab: Vocab) -> list[bytes]:
    """The bytes each vocab id stands for (``b""`` for specials)."""
    inv = {c: b for b, c in _bytes_to_unicode().items()}
    out = []
    for i, t in enumerate(vocab.tokens):
        if i < 2 or t in vocab.extra:
            out.append(b"")
        else:
            out.append(bytes(inv[c] for c in t))
    return out


# ---------------------------------------------------------------------------------------
# holes
# ---------------------------------------------------------------------------------------
HoleKind = Literal["line", "multiline", "span"]


@dataclass(frozen=True)
class Hole:
    """A hole cut from a source: ``text[start:end]`` is the hole."""

    start: int
    end: int
    kind: str

    def parts(self, text: str) -> tuple[str, str, str]:
        return text[: self.start], text[self.start : self.end], text[self.end :]


def _line_bounds(text: str, pos: int) -> tuple[int, int]:
    s = text.rfind("\n", 0, pos) + 1
    e = text.find("\n", pos)
    return s, len(text) if e < 0 else e


def cut_hole(text: str, rng: np.random.Generator, kind: HoleKind, max_lines: int = 4,
             min_chars: int = 3) -> Hole | None:
    """A random hole of ``kind`` in ``text``, or None if the draw landed on nothing usable.

    ``line``: one line's code from its first non-blank character to its end;
    ``multiline``: 2..``max_lines`` lines from the first non-blank character of the first;
    ``span``: a random stretch inside one line (an expression, part of a call...).
    Comment-only and blank lines are not chosen as the start of a hole.
    """
    if not text:
        return None
    s, e = _line_bounds(text, int(rng.integers(len(text))))
    line = text[s:e]
    stripped = line.lstrip(" ")
    if len(stripped.strip()) < min_chars or stripped.startswith("#"):
        return None
    start = s + len(line) - len(stripped)
    end = s + len(line.rstrip())
    if kind == "line":
        return Hole(start, end, kind)
    if kind == "multiline":
        n = int(rng.integers(2, max_lines + 1))
        for _ in range(n - 1):
            if end >= len(text):
                return None
            _, e2 = _line_bounds(text, end + 1)
            end = e2
        end = len(text[:end].rstrip())
        if text.count("\n", start, end) < 1:
            return None
        return Hole(start, end, kind)
    if kind == "span":
        if end - start < min_chars + 1:
            return None
        a = int(rng.integers(start, end - min_chars))
        b = int(rng.integers(a + min_chars, end + 1))
        return Hole(a, b, kind)
    raise ConfigError(f"unknown hole kind {kind!r}: use 'line', 'multiline' or 'span'")


def iter_holes(files: list[SourceFile], kind: HoleKind, seed: int = 0, max_lines: int = 4,
               tries: int = 50) -> Iterator[tuple[SourceFile, Hole]]:
    """Endless (file, hole) draws of one kind from ``files`` (each draw: a random file)."""
    if not files:
        raise ConfigError("no source files to cut holes from")
    rng = np.random.default_rng(seed)
    while True:
        f = files[int(rng.integers(len(files)))]
        for _ in range(tries):
            h = cut_hole(f.text, rng, kind, max_lines=max_lines)
            if h is not None:
                yield f, h
                break
