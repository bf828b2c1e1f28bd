"""Loading saved weights: safetensors only, and a checkpoint that does not fit is an error.

Pickle-based weight files (``pytorch_model.bin``, ``adapter_model.bin``, ``*.pt``, ``*.pth``,
``*.pkl``, ``*.ckpt``) can run code when loaded, so they are never loaded: a folder that holds
only such a file is refused with :class:`~constrained.errors.ModelMismatch` naming it.
A corrupt or truncated ``.safetensors`` file, a ``config.json`` that is not JSON, a tensor
whose shape does not match the config, or a weight the model needs that the file lacks
(``transformers`` would silently initialise it at random) is a ``ModelMismatch`` naming the
file too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ModelMismatch

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def require_safetensors(folder: str | Path, stem: str) -> Path:
    """``folder/STEM.safetensors`` (or its sharded index); ModelMismatch naming the pickle file
    that is there instead, or the missing file."""
    folder = Path(folder)
    for name in (f"{stem}.safetensors", f"{stem}.safetensors.index.json"):
        if (folder / name).is_file():
            return folder / name
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES) if folder.is_dir() else []
    if pickled:
        raise ModelMismatch(f"{folder / pickled[0]}: pickle weight files are not loaded (they can run code); "
                            f"convert it to {stem}.safetensors (safetensors.torch.save_file)")
    raise ModelMismatch(f"{folder} has no {stem}.safetensors")


def read_config(folder: str | Path) -> dict[str, Any]:
    """``folder/config.json`` as a dict; ModelMismatch naming it when missing or not a JSON object."""
    f = Path(folder) / "config.json"
    try:
        cfg = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelMismatch(f"{folder} has no config.json: not a saved model") from None
    except (OSError, ValueError) as e:
        raise ModelMismatch(f"{f} is not a readable JSON config: {_first_line(e)}") from None
    if not isinstance(cfg, dict):
        raise ModelMismatch(f"{f} is not a JSON object")
    return cfg


def load_pretrained(cls: Any, folder: str | Path, stem: str = "model", **kwargs: Any) -> Any:
    """``cls.from_pretrained(folder, use_safetensors=True)``, every failure a ModelMismatch naming
    the file; missing or mis-shaped weights are failures (not random initialisation)."""
    weights = require_safetensors(folder, stem)
    read_config(folder)
    from safetensors import SafetensorError  # noqa: PLC0415
    from transformers.utils import logging as hf_logging  # noqa: PLC0415

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report would repeat what the error below says
    try:
        model, info = cls.from_pretrained(str(folder), use_safetensors=True, output_loading_info=True,
                                          ignore_mismatched_sizes=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, SafetensorError) as e:
        raise ModelMismatch(f"{weights}: cannot load the checkpoint: {_first_line(e)}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    wrong = [f"{k[0]} is {tuple(k[1])} in the file, {tuple(k[2])} in the model" if isinstance(k, tuple) else str(k)
             for k in info.get("mismatched_keys") or []]
    if wrong:
        raise ModelMismatch(f"{weights} does not fit the model its config.json describes: {wrong[0]}"
                            + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""))
    missing = sorted(map(str, info.get("missing_keys") or []))
    if missing:
        raise ModelMismatch(f"{weights} lacks weights the model needs: {', '.join(missing[:3])}"
                            + (f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""))
    return model
