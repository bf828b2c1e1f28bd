"""The Python corpus of the code tasks, their tokenizer, and how holes are cut.

The corpus is real Python source already on the machine: the standard library
(``sysconfig.get_paths()["stdlib"]``, without its ``test`` packages) and the installed
packages (``purelib``, without ``tests`` folders). Whole modules (files) are held out
for evaluation: a file belongs to the held-out split when the SHA-1 of its path,
relative to its root (``stdlib/json/decoder.py``, ``site-packages/numpy/linalg/_linalg.py``),
falls in the bottom 10 % — deterministic on every machine with the same files.

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

import ast
import hashlib
import os
import sysconfig
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from constrained.errors import ConfigError
from constrained.vocab import MASK, PAD, Vocab

#: specials after the BPE tokens, in id order (context-only: a canvas never holds them)
SEP, BOF, EOF, PRE, SUF, MID, EOS = "[SEP]", "[BOF]", "[EOF]", "[PRE]", "[SUF]", "[MID]", "[EOS]"
EXTRA = (SEP, BOF, EOF, PRE, SUF, MID, EOS)
HELDOUT_PERCENT = 10
SKIP_DIRS = frozenset({"test", "tests", "idle_test", "__pycache__", "site-packages", "testing"})
MIN_BYTES, MAX_BYTES = 300, 200_000
TOKENIZER_PATH = Path(__file__).resolve().parent.parent / "constrained" / "models" / "code" / "tokenizer.json"

Split = Literal["train", "heldout"]


@dataclass(frozen=True)
class SourceFile:
    """One module of the corpus: ``key`` is its path relative to its root, prefixed by the
    root's name (``stdlib/...`` or ``site-packages/...``)."""

    key: str
    path: Path
    text: str


def split_of(key: str) -> Split:
    """``"heldout"`` for about 10 % of modules, chosen by the SHA-1 of the module key."""
    h = int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "big")
    return "heldout" if h % 100 < HELDOUT_PERCENT else "train"


def _order(key: str) -> int:
    """A deterministic shuffle of the files (so a size cap samples across packages)."""
    return int.from_bytes(hashlib.sha1(b"order:" + key.encode()).digest()[:8], "big")


def corpus_roots() -> list[tuple[str, Path]]:
    paths = sysconfig.get_paths()
    return [("stdlib", Path(paths["stdlib"])), ("site-packages", Path(paths["purelib"]))]


def corpus_files(split: Split | None = None, roots: list[tuple[str, Path]] | None = None
                 ) -> list[tuple[str, Path]]:
    """(key, path) of every ``*.py`` of ``MIN_BYTES``..``MAX_BYTES`` bytes under the roots, in
    a deterministic shuffled order; ``split`` keeps one split."""
    if split not in (None, "train", "heldout"):
        raise ConfigError(f"unknown corpus split {split!r}: use 'train' or 'heldout'")
    out: list[tuple[str, Path]] = []
    for name, root in roots or corpus_roots():
        if not root.is_dir():
            continue
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")
                             and not d.endswith((".dist-info", ".egg-info")))
            for f in sorted(files):
                if not f.endswith(".py") or f.startswith("test_"):
                    continue
                p = Path(dirpath) / f
                try:
                    size = p.stat().st_size
                except OSError:
                    continue
                if not MIN_BYTES <= size <= MAX_BYTES:
                    continue
                key = f"{name}/{p.relative_to(root).as_posix()}"
                if split is None or split_of(key) == split:
                    out.append((key, p))
    if not out:
        raise ConfigError(f"no Python sources found under {[str(r) for _, r in roots or corpus_roots()]}")
    out.sort(key=lambda kp: _order(kp[0]))
    return out


def parses(text: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(text)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return False
    return True


def load_corpus(split: Split = "train", max_chars: int = 24_000_000, max_files: int | None = None,
                require_parse: bool = False, roots: list[tuple[str, Path]] | None = None) -> list[SourceFile]:
    """The modules of one split, read as UTF-8, in deterministic order, until ``max_chars``.

    ``require_parse`` drops modules this Python cannot parse (evaluation needs them to)."""
    out: list[SourceFile] = []
    total = 0
    for key, path in corpus_files(split, roots):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "\t" in text[:4000] or (require_parse and not parses(text)):
            continue
        out.append(SourceFile(key, path, text))
        total += len(text)
        if total >= max_chars or (max_files is not None and len(out) >= max_files):
            break
    return out


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
