"""What a solve returns: :class:`Result`, its per-pass :class:`PassRecord` trace, and
:class:`RunStats` (where a run's time went). Plain records: nothing here runs a model or
renders one; the trace page is ``constrained.trace.render_html(result, task)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .report import Check

#: ``Result.status`` values: the validator passed; the search proved there is no solution;
#: neither (the budget ran out, or the search was not complete).
STATUSES = ("solved", "infeasible", "unsolved")


@dataclass
class PassRecord:
    """One pass of one item, for traces."""

    tokens: list[int]  # canvas after the pass ([MASK] where uncommitted)
    committed: list[bool]
    confidence: list[float]
    newly_committed: list[int]
    renoised_validator: list[int]
    renoised_confidence: list[int]
    restarted: bool
    messages: list[str]
    proposed: list[int] = field(default_factory=list)  # after commit, before re-noising: what went back
    length: int | None = None  # the content length this pass was held to (length_search), None: free


@dataclass
class RunStats:
    """Where a run's time went: the model forward vs everything else (sampler, domains,
    validator, re-noising)."""

    seconds: float = 0.0
    forward_seconds: float = 0.0
    passes: int = 0

    @property
    def overhead_share(self) -> float:
        return 0.0 if self.seconds == 0 else 1.0 - self.forward_seconds / self.seconds


@dataclass
class Result:
    """What a solve returns.

    status       ``"solved"`` (the validator passed), ``"infeasible"`` (proved: propagation emptied
                 a domain, or a complete search refuted every branch; ``messages[0]`` says why) or
                 ``"unsolved"`` (the budget ran out, or the search was not complete).
    valid        True only for ``"solved"``.
    passes       forward passes of the denoiser spent on this item (in the complete search, decision
                 rounds; 0 when propagation alone decided).
    decisions    complete search: decisions pushed (more than ``passes`` with decisions_per_pass > 1).
    backtracks   complete search: decisions undone.
    unique       with ``check_unique=True``: True (the search exhausted the space after this
                 solution), False (``alternative`` holds a second solution), None (not asked or not
                 known within the budget).
    checks       the validator's named checks on the answer (:class:`~constrained.report.Check`:
                 ``compiles``, ``names resolve``, ``tests 3/3``; a task without named checks gives
                 one, ``validator``); empty for ``"infeasible"``.
    """

    problem: Any
    solution: Any
    valid: bool
    passes: int
    restarts: int = 0
    violations: list[int] = field(default_factory=list)  # positions still implicated
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0
    trace: list[PassRecord] | None = None
    tokens: list[int] = field(default_factory=list)
    error: str | None = None  # why the problem could not be encoded (invalid input)
    status: str = ""
    decisions: int = 0
    backtracks: int = 0
    unique: bool | None = None
    alternative: Any = None
    checks: list[Check] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.status:
            self.status = "solved" if self.valid else "unsolved"
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.valid != (self.status == "solved"):
            raise ValueError(f"valid={self.valid} contradicts status {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        out = {
            "status": self.status,
            "solution": self.solution,
            "valid": self.valid,
            "passes": self.passes,
            "restarts": self.restarts,
            "violations": self.violations,
            "messages": self.messages,
            "error": self.error,
        }
        if self.decisions or self.backtracks:
            out.update(decisions=self.decisions, backtracks=self.backtracks)
        if self.unique is not None:
            out["unique"] = self.unique
            if self.alternative is not None:
                out["alternative"] = self.alternative
        out["checks"] = [c.to_dict() for c in self.checks]
        return out


__all__ = ["STATUSES", "PassRecord", "Result", "RunStats"]
