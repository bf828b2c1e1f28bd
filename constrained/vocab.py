"""Vocab: a task's tokens, content tokens plus the specials it needs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

PAD = "[PAD]"
MASK = "[MASK]"


@dataclass(frozen=True)
class Vocab:
    """Token strings with ids. ``[PAD]`` is id 0 and ``[MASK]`` id 1 in every vocab.

    ``content`` are the tokens a canvas position may hold; uniform noise draws from
    them (restricted further by a canvas's ``allowed`` mask). ``extra`` are specials
    that only appear in context (separators, node tokens, ...).
    """

    content: tuple[str, ...]
    extra: tuple[str, ...] = ()
    tokens: tuple[str, ...] = field(init=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tokens = (PAD, MASK, *self.content, *self.extra)
        if len(set(tokens)) != len(tokens):
            dupes = sorted({t for t in tokens if tokens.count(t) > 1})
            raise ValueError(f"vocab has duplicate tokens: {dupes}")
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(tokens)})

    @classmethod
    def build(cls, content: Iterable[str], extra: Iterable[str] = ()) -> Vocab:
        return cls(tuple(content), tuple(extra))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def mask_id(self) -> int:
        return 1

    @property
    def content_ids(self) -> list[int]:
        return list(range(2, 2 + len(self.content)))

    def content_mask(self, include_pad: bool = False) -> torch.Tensor:
        """[V] bool: True for content tokens (and ``[PAD]`` when asked)."""
        m = torch.zeros(len(self), dtype=torch.bool)
        m[2 : 2 + len(self.content)] = True
        if include_pad:
            m[self.pad_id] = True
        return m

    def id(self, token: str) -> int:
        try:
            return self._index[token]
        except KeyError:
            raise KeyError(f"token {token!r} is not in the vocab") from None

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.id(t) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] for i in ids]
