"""Device names: checked up front, so a wrong one is a message, not a traceback from torch."""

from __future__ import annotations

import torch

from .errors import ConfigError

KNOWN = ("cpu", "cuda", "mps", "xpu")


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``; ConfigError when it is not a device name torch knows
    (``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``xpu``) or names one this machine lacks."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {device!r}: use cpu, cuda, cuda:N, mps or xpu") from None
    if d.type not in KNOWN:
        raise ConfigError(f"device {device!r} is not supported: use cpu, cuda, cuda:N, mps or xpu")
    if d.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(f"device {device!r}: {why}; use --device cpu")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif d.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available on this machine; use --device cpu")
    elif d.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise ConfigError(f"device {device!r}: no XPU is available on this machine; use --device cpu")
    return d
