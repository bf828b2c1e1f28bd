"""Real peptide sequences for the ``peptide`` task, from the data shipped in the ``modlamp``
package on PyPI (BSD-3-Clause; Müller et al., Bioinformatics 33:2753, 2017).

- ``modlamp/data/AMPvsUniProt.csv``: 2,600 antimicrobial peptides from APD3 (label 1) and
  2,600 peptides randomly extracted from UniProt (label 0);
- ``modlamp/data/AMPvsTMset.csv``: 206 antimicrobial peptides (label 1) and 206
  transmembrane helices from real proteins (label 0).

The synthetic "Random" classes of modlamp's anticancer sets are not used. Sequences are
deduplicated (a sequence seen with both labels keeps label 1) and split by a hash of the
sequence: one in ten is held out for evaluation and never used for training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from constrained.errors import ConfigError

from .peptide_chem import AMINO_ACIDS

FILES = ("AMPvsUniProt.csv", "AMPvsTMset.csv")
HELD_OUT_MOD = 10  # one sequence in ten is held out


@dataclass(frozen=True)
class Peptide:
    """One real sequence with its label (1: antimicrobial, 0: not) and source file."""

    seq: str
    label: int
    source: str


def _read(name: str) -> list[tuple[str, int]]:
    try:
        from importlib.resources import files

        text = (files("modlamp") / "data" / name).read_text()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise ConfigError(f"the peptide training data comes from the modlamp package ({name}): "
                          f"pip install modlamp ({e})") from None
    rows = []
    for line in text.strip().splitlines()[1:]:  # first line: count, features, class names
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0]:
            rows.append((parts[0].upper(), int(parts[1])))
    return rows


def is_held_out(seq: str) -> bool:
    """The deterministic evaluation split: a hash of the sequence."""
    return int(hashlib.sha1(seq.encode()).hexdigest(), 16) % HELD_OUT_MOD == 0


@cache
def load_peptides() -> tuple[Peptide, ...]:
    """Every usable sequence (20 canonical residues only), deduplicated, in file order."""
    seen: dict[str, Peptide] = {}
    for name in FILES:
        for seq, label in _read(name):
            if not seq or set(seq) - set(AMINO_ACIDS):
                continue
            if seq not in seen or (label == 1 and seen[seq].label == 0):
                seen[seq] = Peptide(seq, label, name)
    return tuple(seen.values())


def split(max_len: int, held_out: bool) -> list[Peptide]:
    """Sequences of at most ``max_len`` residues in the training (False) or held-out (True) split."""
    return [p for p in load_peptides() if len(p.seq) <= max_len and is_held_out(p.seq) == held_out]


def describe(max_len: int) -> str:
    """The model card's data line: source, licence, split sizes."""
    train, held = split(max_len, held_out=False), split(max_len, held_out=True)
    amp = sum(p.label for p in train)
    try:
        from importlib.metadata import version

        ver = f" {version('modlamp')}"
    except Exception:  # noqa: BLE001 (metadata is optional for the card)
        ver = ""
    return (f"real peptide sequences shipped in the PyPI package modlamp{ver} (BSD-3-Clause licence; "
            f"Müller et al., Bioinformatics 33:2753, 2017): {', '.join('modlamp/data/' + f for f in FILES)} "
            "(antimicrobial peptides from APD3, peptides from UniProt, transmembrane helices; the synthetic "
            f"'Random' sets are not used). Deduplicated, at most {max_len} residues, 20 canonical residues: "
            f"{len(train)} training sequences ({amp} antimicrobial) and {len(held)} held out for evaluation "
            "(one in ten by a SHA-1 hash of the sequence, `tasks/peptide_data.py`); the label (antimicrobial "
            "or not) is given as a context token 80% of the time")
