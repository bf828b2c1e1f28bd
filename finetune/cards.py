"""What a finished run leaves beside its weights for people: the model card
(``huggingface_hub.ModelCard``: YAML metadata, then the text each mode writes) and the loss curve."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard, ModelCardData


@dataclass
class CardText:
    """A mode's model card: a title, intro paragraphs, the "How it was trained" bullets and the
    scores table (markdown rows) on the held-out set named in ``held_out`` (see evaluation.py)."""

    title: str
    intro: list[str]
    trained: list[str]
    scores: list[str]
    held_out: str
    size: int
    tags: list[str] = field(default_factory=list)
    library_name: str | None = None


def write_card(out: Path, text: CardText) -> Path:
    """OUT/README.md: the card's metadata (tags, library) and its text. Returns the file."""
    lines = [f"# {text.title}", ""]
    for paragraph in text.intro:
        lines += [paragraph, ""]
    lines += ["## How it was trained", "", *(f"- {b}" for b in text.trained), ""]
    lines += ["## Scores", "", f"Verified solve rate on {text.size} held-out generated problems ({text.held_out}):",
              "", *text.scores, "", "Larger evaluations are in BENCHMARKS.md.", ""]
    data = ModelCardData(tags=["constrained", "discrete-diffusion", *text.tags], library_name=text.library_name)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n" + "\n".join(lines))
    path = Path(out) / "README.md"
    card.save(path)
    return path


def machine_description() -> str:
    return (f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
            f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU only'}, "
            f"torch {torch.__version__}")


def plot_loss(history: list[dict[str, Any]], path: Path) -> None:
    """The logged training loss per step (log scale) as a PNG; nothing when none was logged."""
    pts = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    if not pts:
        return
    import matplotlib  # noqa: PLC0415 (only when a curve is drawn)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(*zip(*pts))
    ax.set_xlabel("step")
    ax.set_ylabel("diffusion loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
