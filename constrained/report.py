"""Validator reports: per item ok, per position violations, readable messages."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Report:
    """ok [B] bool: complete and valid. violations [B, L] bool: positions implicated.

    messages[b] lists readable reasons for item b (filled only when asked for, since
    building strings on the denoising hot path is waste).
    """

    ok: torch.Tensor
    violations: torch.Tensor
    messages: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.ok.dim() != 1 or self.violations.dim() != 2 or self.ok.shape[0] != self.violations.shape[0]:
            raise ValueError(
                f"report shapes do not agree: ok {tuple(self.ok.shape)}, violations {tuple(self.violations.shape)}"
            )
