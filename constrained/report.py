"""Validator reports: per item ok, per position violations, readable messages, named checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Check:
    """One named check a validator made on one item: ``ok`` and a short ``detail`` (``"3/3"``,
    ``"(undefined: 'ific')"``). Printed as ``name`` or ``name detail``."""

    name: str
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.name} {self.detail}".strip()

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Report:
    """ok [B] bool: complete and valid. violations [B, L] bool: positions implicated.

    messages[b] lists readable reasons for item b, and checks[b] the named checks the validator
    made on it (:class:`Check`; a task may leave them out), both filled only when asked for
    (``messages=True``), since building strings on the denoising hot path is waste.
    """

    ok: torch.Tensor
    violations: torch.Tensor
    messages: list[list[str]] = field(default_factory=list)
    checks: list[list[Check]] = field(default_factory=list)

    def item_checks(self, b: int) -> list[Check]:
        """Item ``b``'s named checks (needs ``messages=True``); a task that names none gets one,
        ``validator``, with its verdict."""
        return list(self.checks[b]) if self.checks else [Check("validator", bool(self.ok[b]))]

    def __post_init__(self) -> None:
        if self.ok.dim() != 1 or self.violations.dim() != 2 or self.ok.shape[0] != self.violations.shape[0]:
            raise ValueError(
                f"report shapes do not agree: ok {tuple(self.ok.shape)}, violations {tuple(self.violations.shape)}"
            )
