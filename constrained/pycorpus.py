"""The Python source corpus: real modules already on this machine, split by module.

The corpus is the standard library (``sysconfig.get_paths()["stdlib"]``, without its ``test``
packages) and the installed packages (``purelib``, without ``tests`` folders): nothing is
downloaded. Whole modules (files) are held out for evaluation: a file belongs to the held-out
split when the SHA-1 of its path, relative to its root (``stdlib/json/decoder.py``,
``site-packages/numpy/linalg/_linalg.py``), falls in the bottom 10 % — deterministic on every
machine with the same files.

Two users read it, neither through the other: the code tasks (``tasks/code_corpus.py`` adds
their tokenizer and hole cutting) and the engine's language models (``engine/corpus.py``, whose
callers pass the roots in, :func:`corpus_roots` by default). Plain functions of the standard
library only (no torch)."""

from __future__ import annotations

import ast
import hashlib
import os
import sysconfig
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import ConfigError

HELDOUT_PERCENT = 10
SKIP_DIRS = frozenset({"test", "tests", "idle_test", "__pycache__", "site-packages", "testing"})
MIN_BYTES, MAX_BYTES = 300, 200_000
#: the byte-level BPE tokenizer trained on the training split, shipped with the code model
TOKENIZER_PATH = Path(__file__).resolve().parent / "models" / "code" / "tokenizer.json"


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
    """The default roots, (name, directory): this interpreter's standard library and its
    installed packages."""
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
