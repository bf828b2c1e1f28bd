"""The engine's names, defined once and torch-free: the samplers' commit rules and the noise
processes. ``engine/samplers.py`` and ``engine/noise.py`` check names against them; the command
line offers them as its ``--strategy`` and ``--noise`` choices without importing torch."""

from __future__ import annotations

#: commit rules of :class:`constrained.engine.samplers.Sampler` (``strategy``)
STRATEGIES = ("threshold", "topk", "margin", "entropy-bound")
#: noise processes of :func:`constrained.engine.noise.make_noise` (absorbing, uniform-state)
NOISES = ("mask", "uniform")
