"""Length search, a policy of the local search for variable-length canvases: content followed by a
run of an end token (``[PAD]``). The first attempt ends the content where the model will; each
restart then holds the content to the next likeliest length the model gave on its first pass,
since on such a canvas P(position n is the end token) = P(length <= n).

Small pure functions on [b, L] tensors, like the re-noising policies in ``renoise.py``.
"""

from __future__ import annotations

import torch


def length_mask(length: torch.Tensor, L: int, V: int, end_id: int, device) -> torch.Tensor:
    """[b, L, V] allowed under fixed lengths (``length`` [b], -1: free): the end token only from
    position ``length`` on, anything but it before."""
    pos = torch.arange(L, device=device)[None, :]
    free = (length < 0)[:, None]
    tail = pos >= length[:, None]
    is_end = torch.zeros(V, dtype=torch.bool, device=device)
    is_end[end_id] = True
    return free.unsqueeze(-1) | torch.where(tail.unsqueeze(-1), is_end, ~is_end)


def length_order(p_end: torch.Tensor, fixed: torch.Tensor, tokens: torch.Tensor, end_id: int) -> torch.Tensor:
    """[b, L + 1] content lengths, likeliest first, from the first pass's P(position n is the end
    token) [b, L]: on a canvas whose content is followed by end tokens only, that marginal is
    P(length <= n), so P(length = n) = cdf(n) - cdf(n - 1) (the cdf made monotone; length L, no end
    token at all, takes the rest). Lengths that fixed positions rule out come last."""
    cdf = p_end.float().cummax(-1).values  # [b, L]
    cdf = torch.cat([cdf, torch.ones_like(cdf[:, :1])], dim=1)  # length <= L is certain
    pmf = cdf - torch.nn.functional.pad(cdf[:, :-1], (1, 0))  # [b, L + 1]
    b, L = fixed.shape
    pos = torch.arange(L, device=fixed.device)
    fixed_end = fixed & (tokens == end_id)
    fixed_other = fixed & (tokens != end_id)
    n = torch.arange(L + 1, device=fixed.device)[:, None]  # [L + 1, 1]
    # length n needs: no fixed end token before n, no fixed content token from n on
    bad = ((fixed_end[:, None, :] & (pos[None, None, :] < n[None])) |
           (fixed_other[:, None, :] & (pos[None, None, :] >= n[None]))).any(-1)  # [b, L + 1]
    score = torch.where(bad, torch.full_like(pmf, -1.0), pmf)
    return score.argsort(dim=-1, descending=True, stable=True)


def next_length(order: torch.Tensor, tried: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor,
                 committed: torch.Tensor, end_id: int) -> torch.Tensor:
    """The next untried length of each restarting item ([r]); the attempt that just ended counts as
    tried at the length it had reached (its committed content before the first end token)."""
    L = tokens.shape[1]
    is_end = committed & (tokens == end_id)
    first_end = torch.where(is_end.any(-1), is_end.float().argmax(-1), torch.full_like(rows, L))
    tried[rows, first_end] = True
    untried = ~tried[rows].gather(1, order)  # [r, L + 1] in order
    pick = untried.float().argmax(-1)  # first untried in order (0 if every length was tried)
    out = order.gather(1, pick[:, None]).squeeze(1)
    tried[rows, out] = True
    return out


__all__ = ["length_mask", "length_order", "next_length"]
