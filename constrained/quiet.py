"""Keeping third-party libraries quiet while a model loads.

transformers draws a ``Loading weights`` progress bar for every checkpoint and logs advisory
messages; transformers and peft raise ``FutureWarning`` / ``DeprecationWarning`` about their own
internals (e.g. ``is_gradient_checkpointing`` is deprecated) that a user of this project cannot act
on. :func:`quiet_loading` silences exactly those for the duration of a load and restores the
libraries' settings afterwards; the project's own messages and errors are untouched.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: libraries whose own deprecation notices are hidden while loading
NOISY = ("transformers", "peft", "accelerate", "huggingface_hub", "torch")


@contextmanager
def quiet_loading(enabled: bool = True) -> Iterator[None]:
    """Within the block: no transformers / huggingface_hub progress bars, transformers logging
    at ERROR, and no FutureWarning / DeprecationWarning raised from inside :data:`NOISY`."""
    if not enabled:
        yield
        return
    restore = []
    try:
        from transformers.utils import logging as hf_logging  # noqa: PLC0415 (only when a model loads)

        level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        restore.append(lambda: (hf_logging.set_verbosity(level),
                                hf_logging.enable_progress_bar() if bars else None))
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    if "huggingface_hub" in sys.modules or _importable("huggingface_hub"):
        from huggingface_hub import utils as hub_utils  # noqa: PLC0415

        hub_off = hub_utils.are_progress_bars_disabled()
        hub_utils.disable_progress_bars()
        restore.append(lambda: None if hub_off else hub_utils.enable_progress_bars())
    try:
        with warnings.catch_warnings():
            for lib in NOISY:
                for category in (FutureWarning, DeprecationWarning, UserWarning):
                    warnings.filterwarnings("ignore", category=category, module=rf"{lib}(\.|$)")
            yield
    finally:
        for undo in reversed(restore):
            undo()


def _importable(name: str) -> bool:
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec(name) is not None
