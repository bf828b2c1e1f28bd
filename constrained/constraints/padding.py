"""Trailing padding: a variable-length answer on a fixed-length canvas ends in padding and holds none
inside (a peptide shorter than its canvas, a code hole shorter than its span)."""

from __future__ import annotations

import torch

from .base import Constraint


class TrailingPadding(Constraint):
    """Padding (value index ``pad`` of the one-hot view) only after the last content value.

    allow_empty: whether the answer may be padding only (position 0 holding padding).
    """

    def __init__(self, pad: int, allow_empty: bool = True):
        self.pad = pad
        self.allow_empty = allow_empty

    def _split(self, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(padding [B, L] bool, content [B, L] bool) at the filled positions."""
        pad = onehot[..., self.pad] > 0.5
        return pad, (onehot.sum(-1) > 0.5) & ~pad

    def violations(self, onehot: torch.Tensor) -> torch.Tensor:
        """Every filled position from the first padding to the last content after it (both named),
        and position 0 when it is padding and ``allow_empty`` is False."""
        pad, content = self._split(onehot)
        L = onehot.shape[1]
        pos = torch.arange(L, device=onehot.device)
        first_pad = torch.where(pad, pos, L).amin(-1, keepdim=True)  # [B, 1]
        last_content = torch.where(content, pos, -1).amax(-1, keepdim=True)
        viol = (pad | content) & (pos >= first_pad) & (pos <= last_content)
        if not self.allow_empty:
            viol[:, 0] |= pad[:, 0]
        return viol

    def candidates(self, onehot: torch.Tensor) -> torch.Tensor:
        """After a filled padding only padding; before filled content anything but padding; not
        padding first unless ``allow_empty``."""
        pad, content = self._split(onehot)
        pad_before = (pad.long().cumsum(-1) - pad.long()) > 0  # padding at some j < i
        content_after = (content.long().flip(-1).cumsum(-1).flip(-1) - content.long()) > 0  # content at j > i
        is_pad = torch.zeros(onehot.shape[-1], dtype=torch.bool, device=onehot.device)
        is_pad[self.pad] = True
        cand = ~((pad_before.unsqueeze(-1) & ~is_pad) | (content_after.unsqueeze(-1) & is_pad))
        if not self.allow_empty:
            cand[:, 0, self.pad] = False
        return cand

    def messages(self, onehot: torch.Tensor, b: int) -> list[str]:
        pad, content = self._split(onehot[b : b + 1])
        out = []
        if not self.allow_empty and bool(pad[0, 0]):
            out.append("the answer is empty (padding at position 1)")
        pads = pad[0].nonzero().squeeze(-1)
        later = content[0].nonzero().squeeze(-1)
        if pads.numel() and later.numel() and int(later.max()) > int(pads.min()):
            out.append(f"padding at position {int(pads.min()) + 1} before content at position {int(later.max()) + 1}"
                       f" (padding must trail)")
        return out
