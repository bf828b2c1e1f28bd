"""Samplers: one denoising step's choice of tokens and of which positions to commit.

Like a diffusers scheduler: small, swappable, stateless between calls except for
what it is given (the pass index).

``entropy-bound`` is DiffusionGemma's sampler as transformers implements it
(``EntropyBoundSampler``, ``LinearTemperatureScheduleLogitsProcessor`` and
``StableAndConfidentStoppingCriteria`` in ``transformers.models.diffusion_gemma``; the bound is
from Ben-Hamu et al., 2025, arXiv:2505.24857): tokens are sampled at a linearly scheduled
temperature, and the lowest-entropy positions are accepted while the sum of their entropies,
less the largest, stays within ``entropy_bound``. The block engine runs its whole loop (random
initial canvas, every non-accepted position re-drawn each step, stop once stable and
confident: ``engine/entropy_bound.py``); the Solver uses :meth:`Sampler.step`'s accept set as
its commits, under the task's constraints.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .names import STRATEGIES

NEG = -1e9


@dataclass(frozen=True)
class Sampler:
    """Choose and commit tokens.

    strategy   ``threshold``: commit every candidate whose confidence >= ``threshold`` (at least one);
               ``topk``: commit ceil(remaining / passes left) on a ``steps``-pass schedule, most confident first;
               ``margin``: like threshold, with confidence = p(top1) - p(top2).
    temperature  0 takes the argmax; > 0 samples from softmax(logits / T).
    floor      with ``threshold`` / ``margin``: also commit at least ceil(remaining / passes left) of
               the ``steps`` schedule, so a canvas is filled within ``steps`` passes even when the
               model is unsure (the validator then re-noises what is wrong).
    end_token  the token id that ends the content (e.g. the ``[PAD]`` run closing a variable-length
               canvas), committed only where every uncommitted position after it, and every one
               before it back to the last committed position (or the canvas's start), is predicted
               as this token too:
               the end of the content is decided when the content reaches it, never by a confident
               guess far to the right. Greedy choice predicts it only where its probability is >= 1/2
               (ending is a yes/no decision against all content tokens together). ``None``: off.
    window     semi-autoregressive order: only the ``window`` leftmost uncommitted positions may be
               committed in a pass (LLaDA's blocks, sliding), so a sequence is written left to right
               in small, mutually conditioned steps rather than all at once. ``None``: anywhere.

    ``entropy-bound`` (DiffusionGemma's sampler; :meth:`diffusion_gemma` gives its defaults):
    entropy_bound  accept the lowest-entropy candidates while sum(entropies) - max(entropies) <= this
               (at least one per pass); nats.
    t_max, t_min   the linear temperature schedule: pass p of ``steps`` samples at
               t_min + (t_max - t_min) * (steps - p) / steps (t_max first, falling towards t_min);
               ``temperature`` is not used.
    stability, stop_entropy  the block engine stops a canvas once its argmax has not changed for
               ``stability`` passes and the mean entropy of the scaled logits is below ``stop_entropy``.
    """

    strategy: str = "threshold"
    threshold: float = 0.9
    steps: int = 12
    temperature: float = 0.0
    floor: bool = False
    end_token: int | None = None
    window: int | None = None
    entropy_bound: float = 0.1
    t_max: float = 0.8
    t_min: float = 0.4
    stability: int = 1
    stop_entropy: float = 0.005

    @classmethod
    def diffusion_gemma(cls, generation_config=None, **kw) -> Sampler:
        """DiffusionGemma's sampler with transformers' defaults (``DiffusionGemmaGenerationConfig``):
        48 steps, entropy bound 0.1, temperature 0.8 -> 0.4, stop once stable for 1 step with mean
        entropy < 0.005. ``generation_config``: a checkpoint's ``DiffusionGemmaGenerationConfig``
        (``model.generation_config``), whose values replace the defaults where set; ``kw`` overrides any
        field."""
        fields = {"strategy": "entropy-bound", "steps": 48, "entropy_bound": 0.1, "t_max": 0.8, "t_min": 0.4,
                  "stability": 1, "stop_entropy": 0.005}
        if generation_config is not None:
            sc = getattr(generation_config, "sampler_config", None)
            names = {"steps": "max_denoising_steps", "t_max": "t_max", "t_min": "t_min",
                     "stability": "stability_threshold", "stop_entropy": "confidence_threshold"}
            for ours, theirs in names.items():
                v = getattr(generation_config, theirs, None)
                if v is not None:
                    fields[ours] = v
            if getattr(sc, "entropy_bound", None) is not None:
                fields["entropy_bound"] = sc.entropy_bound
        return cls(**{**fields, **kw})

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown sampler strategy {self.strategy!r}: use one of {STRATEGIES}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"sampler threshold must be in [0, 1], got {self.threshold}")
        if self.steps < 1:
            raise ValueError(f"sampler steps must be >= 1, got {self.steps}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.end_token is not None and (not isinstance(self.end_token, int) or self.end_token < 0):
            raise ValueError(f"end_token must be a token id >= 0 or None, got {self.end_token!r}")
        if self.window is not None and (not isinstance(self.window, int) or self.window < 1):
            raise ValueError(f"window must be an integer >= 1 or None, got {self.window!r}")
        if not self.entropy_bound > 0:
            raise ValueError(f"entropy_bound must be > 0, got {self.entropy_bound}")
        if not 0 < self.t_min <= self.t_max:
            raise ValueError(f"the temperature schedule needs 0 < t_min <= t_max, got {self.t_min}, {self.t_max}")
        if self.stability < 0 or self.stop_entropy < 0:
            raise ValueError(f"stability and stop_entropy must be >= 0, got {self.stability}, {self.stop_entropy}")

    # --- entropy-bound -----------------------------------------------------------------------
    def schedule_temperature(self, pass_index: int) -> float:
        """The linear schedule's temperature at pass ``pass_index`` (0-based; passes past ``steps``
        keep the last step's)."""
        remaining = max(self.steps - pass_index, 1)  # transformers counts steps down, N .. 1
        return self.t_min + (self.t_max - self.t_min) * remaining / self.steps

    def accept(self, entropy: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """[B, L] bool: the entropy-bound accept set among ``candidates`` (entropy [B, L] in nats):
        the lowest-entropy ones, k of them, with sum - max (the sorted k-th) <= ``entropy_bound``.
        At least one candidate of each row that has any is accepted."""
        e = entropy.float().masked_fill(~candidates, float("inf"))
        sorted_e, order = torch.sort(e, dim=-1)
        finite = torch.isfinite(sorted_e)
        cum = torch.where(finite, sorted_e, torch.zeros_like(sorted_e)).cumsum(-1)
        take = (cum - torch.where(finite, sorted_e, torch.zeros_like(sorted_e)) <= self.entropy_bound) & finite
        return torch.zeros_like(candidates).scatter(-1, order, take)

    def _entropy_bound_step(self, logits: torch.Tensor, allowed: torch.Tensor | None, candidates: torch.Tensor,
                            pass_index: int, generator: torch.Generator | None
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pred sampled at the scheduled temperature, scaled logits, entropy, probs, accept) [B, L(, V)]."""
        masked = logits.float() if allowed is None else logits.float().masked_fill(~allowed, NEG)
        scaled = masked / self.schedule_temperature(pass_index)
        probs = torch.softmax(scaled, dim=-1)
        V = probs.shape[-1]
        pred = torch.multinomial(probs.reshape(-1, V), 1, generator=generator).view(probs.shape[:-1])
        entropy = torch.distributions.Categorical(logits=scaled).entropy()
        return pred, scaled, entropy, probs, self.accept(entropy, candidates)

    def step(
        self,
        logits: torch.Tensor,  # [B, L, V]
        allowed: torch.Tensor,  # [B, L, V] bool
        candidates: torch.Tensor,  # [B, L] bool: positions that may be committed now
        pass_index: int,
        temperature: torch.Tensor | float | None = None,  # per item [B] overrides self.temperature
        generator: torch.Generator | None = None,
        confidence_allowed: torch.Tensor | None = None,  # [B, L, V] bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (pred [B, L], confidence [B, L], commit [B, L] bool, probs [B, L, V]).

        Tokens are chosen among ``allowed``. Confidence is measured under ``confidence_allowed``
        (default ``allowed``): a solver that narrows ``allowed`` by propagation passes the wider
        allowed values here, so pruning does not inflate the model's certainty, and a position
        left with a single allowed token (forced) counts as certain.

        ``entropy-bound``: tokens are sampled from the allowed logits at the scheduled temperature,
        the commits are the entropy-bound accept set among ``candidates``; ``temperature`` is not used."""
        if self.strategy == "entropy-bound":
            pred, _, _, probs, commit = self._entropy_bound_step(logits, allowed, candidates, pass_index, generator)
            cprobs = probs if confidence_allowed is None else torch.softmax(
                logits.float().masked_fill(~confidence_allowed, NEG), dim=-1)
            conf = cprobs.gather(-1, pred.unsqueeze(-1)).squeeze(-1)
            if confidence_allowed is not None:
                conf = torch.where(allowed.sum(-1) == 1, torch.ones_like(conf), conf)
            return pred, conf, commit & self._eligible(pred, candidates), probs
        masked = logits.float().masked_fill(~allowed, NEG)
        probs = torch.softmax(masked, dim=-1)
        temp = self.temperature if temperature is None else temperature
        if isinstance(temp, torch.Tensor) or temp > 0:
            t = torch.as_tensor(temp, dtype=probs.dtype, device=probs.device)
            t = t.view(-1, 1, 1) if t.dim() == 1 else t
            hot = (t > 0).expand(probs.shape[0], 1, 1) if t.dim() == 3 else (t > 0)
            gumbel = -torch.log(-torch.log(torch.rand(probs.shape, generator=generator,
                                                      device=probs.device).clamp_min(1e-10)))
            sampled = (masked / t.clamp_min(1e-6) + gumbel).argmax(-1)
            pred = torch.where(hot.squeeze(-1), sampled, self._greedy(masked))
        else:
            pred = self._greedy(masked)
        cprobs = probs
        if confidence_allowed is not None:
            cprobs = torch.softmax(logits.float().masked_fill(~confidence_allowed, NEG), dim=-1)
        p_pred = cprobs.gather(-1, pred.unsqueeze(-1)).squeeze(-1)
        if self.strategy == "margin":
            top2 = cprobs.topk(2, dim=-1).values
            conf = top2[..., 0] - top2[..., 1]
        else:
            conf = p_pred
        if confidence_allowed is not None:
            conf = torch.where(allowed.sum(-1) == 1, torch.ones_like(conf), conf)
        commit = self._select(conf, candidates, pass_index, self._eligible(pred, candidates))
        return pred, conf, commit, probs

    def choose(
        self,
        logits: torch.Tensor,  # [B, L, V]
        candidates: torch.Tensor,  # [B, L] bool
        pass_index: int,
        allowed: torch.Tensor | None = None,  # [B, L, V] bool; None: every token (the caller masked logits)
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The lean form of :meth:`step` for decoding loops that need no probabilities back:
        returns (pred [B, L], confidence [B, L], commit [B, L] bool), the same as ``step``'s first three,
        except that confidence is computed at ``candidates`` only (0 elsewhere), so the softmax runs
        over the positions still to decide, not the whole canvas."""
        if self.strategy == "entropy-bound":
            pred, _, _, probs, commit = self._entropy_bound_step(logits, allowed, candidates, pass_index, generator)
            conf = probs.gather(-1, pred.unsqueeze(-1)).squeeze(-1) * candidates
            return pred, conf, commit & self._eligible(pred, candidates)
        masked = logits.float()
        if allowed is not None:
            masked = masked.masked_fill(~allowed, NEG)
        if self.temperature > 0:
            gumbel = -torch.log(-torch.log(torch.rand(masked.shape, generator=generator,
                                                      device=masked.device).clamp_min(1e-10)))
            pred = (masked / self.temperature + gumbel).argmax(-1)
        else:
            pred = self._greedy(masked)
        conf = torch.zeros(pred.shape, dtype=masked.dtype, device=masked.device)
        if bool(candidates.any()):
            probs = torch.softmax(masked[candidates], dim=-1)  # [N, V], N = candidate positions
            if self.strategy == "margin":
                top2 = probs.topk(2, dim=-1).values
                conf[candidates] = top2[:, 0] - top2[:, 1]
            else:
                conf[candidates] = probs.gather(-1, pred[candidates].unsqueeze(-1)).squeeze(-1)
        return pred, conf, self._select(conf, candidates, pass_index, self._eligible(pred, candidates))

    def _greedy(self, masked: torch.Tensor) -> torch.Tensor:
        """[B, L] argmax of logits [B, L, V]; with ``end_token``, that token where it is more likely
        than all the others together (p >= 1/2: ending the content is a yes/no decision, not a
        contest with the single likeliest content token), else the likeliest other token."""
        if self.end_token is None:
            return masked.argmax(-1)
        d = self.end_token
        p_d = (masked[..., d] - masked.logsumexp(-1)).exp()  # [B, L]
        other = masked.clone()
        other[..., d] = NEG
        best = other.argmax(-1)
        only_d = other.amax(-1) <= NEG / 2  # nothing else allowed
        return torch.where((p_d >= 0.5) | only_d, torch.full_like(best, d), best)

    def _eligible(self, pred: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """[B, L] candidates that may be committed now: with ``window``, the leftmost ``window`` ones;
        with ``end_token``, a position predicted as that token only if every candidate after it, and
        every one from the start of its run of candidates up to it, is too."""
        out = candidates
        if self.end_token is not None:
            other = (candidates & (pred != self.end_token)).long()  # [B, L]
            before = other.cumsum(-1) - other  # candidates predicted as other tokens left of each position
            left = torch.nn.functional.pad(candidates[:, :-1], (1, 0), value=False)
            run_start = candidates & ~left  # first position of each run of candidates
            base = torch.where(run_start, before, torch.zeros_like(before)).cummax(-1).values
            after = other.flip(-1).cumsum(-1).flip(-1) - other  # ... right of it (this pass's other commits)
            out = candidates & ~((pred == self.end_token) & ((before > base) | (after > 0)))
        if self.window is not None:
            rank = candidates.long().cumsum(-1)  # 1 at the leftmost candidate
            near = rank <= self.window
            if self.end_token is not None:  # an eligible run of the end token goes in whole
                near = near | (pred == self.end_token)
            out = out & near
        return out

    def _select(self, conf: torch.Tensor, candidates: torch.Tensor, pass_index: int,
                eligible: torch.Tensor | None = None) -> torch.Tensor:
        """The schedule counts ``candidates``; commits are chosen among ``eligible`` (default: all)."""
        eligible = candidates if eligible is None else eligible & candidates
        score = conf.masked_fill(~eligible, -1.0)
        n_cand = candidates.sum(-1)  # [B]
        scheduled = torch.ceil(n_cand.float() / max(self.steps - pass_index, 1)).long()
        if self.strategy == "topk":
            k = scheduled
        else:
            k = (score >= self.threshold).sum(-1).clamp(min=1)
            if self.floor:
                k = torch.maximum(k, scheduled)
        k = torch.minimum(k, eligible.sum(-1))
        kmax = int(k.max()) if k.numel() else 0
        commit = torch.zeros_like(candidates)
        if kmax == 0:
            return commit
        top = score.topk(kmax, dim=-1).indices  # [B, kmax]
        rank_ok = torch.arange(kmax, device=conf.device)[None, :] < k[:, None]
        commit.scatter_(1, top, rank_ok)
        return commit & eligible
