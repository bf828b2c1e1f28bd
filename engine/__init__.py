"""The diffusion engine: noise processes, losses, samplers and denoisers.

Names are imported on first use (PEP 562): ``constrained.engine.samplers`` needs torch only,
while the denoisers (``DenoiserModel``, ``HFMaskedLMDenoiser``) bring in transformers.
"""

from __future__ import annotations

from constrained.lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
