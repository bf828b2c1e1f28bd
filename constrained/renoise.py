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


def backjump(implicated: torch.Tensor, level: torch.Tensor, committed: torch.Tensor, fixed: torch.Tensor,
             tokens: torch.Tensor, tabu: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Chronological backjumping with each pass as a decision level.

    For an item with implicated positions, find the latest level ``l*`` that committed one of
    them; re-noise every token committed at ``l*`` or later, and bar the implicated values of
    level ``l*`` (tabu = l* + 1). Bars from deeper levels are forgotten, since the context they
    were learnt in is being undone. implicated/level/committed/fixed/tokens [b, L] (level -1 where
    uncommitted); tabu [b, L, V] int16 or None. Returns (positions to re-noise, tabu).
    """
    has = implicated.any(-1)  # [b]
    lstar = torch.where(implicated, level, torch.full_like(level, -1)).max(-1).values  # [b]
    back = committed & ~fixed & has[:, None] & (level >= lstar[:, None])
    if tabu is not None:
        culprits = implicated & (level == lstar[:, None])
        mark = (lstar + 1).to(tabu.dtype)[:, None, None]
        tabu = torch.where(has[:, None, None] & (tabu > mark), torch.zeros_like(tabu), tabu)
        hit = torch.zeros_like(tabu, dtype=torch.bool).scatter_(-1, tokens.unsqueeze(-1), culprits.unsqueeze(-1))
        tabu = torch.where(hit, mark.expand_as(tabu), tabu)
    return back, tabu
