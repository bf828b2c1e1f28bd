"""The diffusion engine: noise processes, losses, samplers and denoisers.

Names are imported on first use (PEP 562): ``constrained.engine.samplers`` needs torch only,
while the denoisers (``DenoiserModel``, ``HFMaskedLMDenoiser``) bring in transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DenoiserConfig": ".model",
    "DenoiserModel": ".model",
    "GraphDenoiser": ".graph",
    "GraphDenoiserConfig": ".graph",
    "HFMaskedLMDenoiser": ".denoiser",
    "predict_logits": ".denoiser",
    "MaskNoise": ".noise",
    "NoiseProcess": ".noise",
    "UniformNoise": ".noise",
    "make_noise": ".noise",
    "Sampler": ".samplers",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
