"""Re-noising policies: after a pass, which committed positions go back to noise.

Each is a small pure function on [b, L] masks so the Solver can switch it on or off
and a benchmark can measure it alone.
"""

from __future__ import annotations

import torch


def validator_positions(violations: torch.Tensor, committed: torch.Tensor, fixed: torch.Tensor,
                        solved: torch.Tensor, dead: torch.Tensor | None = None,
                        peers: torch.Tensor | None = None) -> torch.Tensor:
    """Constraint-aware re-noising: committed, non-fixed positions the validator implicates,
    plus the committed peers of any position whose domain was emptied (a dead end).

    violations/committed/fixed/dead [b, L] bool; solved [b] bool; peers [L, L] or [b, L, L] bool.
    """
    out = violations & committed & ~fixed
    if dead is not None and peers is not None and dead.any():
        if peers.dim() == 2:
            near = (dead.float() @ peers.float()) > 0
        else:
            near = torch.bmm(dead.float().unsqueeze(1), peers.float()).squeeze(1) > 0
        out |= near & committed & ~fixed
    return out & ~solved.unsqueeze(-1)


def low_confidence_positions(probs: torch.Tensor, tokens: torch.Tensor, committed: torch.Tensor,
                             fixed: torch.Tensor, just_committed: torch.Tensor, threshold: float) -> torch.Tensor:
    """Self-correction: committed tokens (not this pass's) whose probability under the latest
    prediction fell below ``threshold``. probs [b, L, V]; the rest [b, L]."""
    p_cur = probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return committed & ~fixed & ~just_committed & (p_cur < threshold)


def update_tabu(tabu: torch.Tensor, tokens: torch.Tensor, where: torch.Tensor, passes: int) -> torch.Tensor:
    """Count every barred (position, value) down by one pass and bar ``tokens`` at ``where``
    for ``passes`` passes. tabu [b, L, V] int16."""
    tabu = torch.where(tabu > 0, tabu - 1, tabu)
    hit = torch.zeros_like(tabu, dtype=torch.bool).scatter_(-1, tokens.unsqueeze(-1), where.unsqueeze(-1))
    return torch.where(hit, torch.full_like(tabu, passes), tabu)
