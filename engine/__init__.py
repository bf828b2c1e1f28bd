"""The diffusion engine: noise processes, losses, samplers and denoisers."""

from .denoiser import HFMaskedLMDenoiser, predict_logits
from .graph import GraphDenoiser, GraphDenoiserConfig
from .model import DenoiserConfig, DenoiserModel
from .noise import MaskNoise, NoiseProcess, UniformNoise, make_noise
from .samplers import Sampler

__all__ = [
    "DenoiserConfig",
    "DenoiserModel",
    "GraphDenoiser",
    "GraphDenoiserConfig",
    "HFMaskedLMDenoiser",
    "MaskNoise",
    "NoiseProcess",
    "Sampler",
    "UniformNoise",
    "make_noise",
    "predict_logits",
]
