"""Peptide chemistry for the ``peptide`` task: RDKit properties, their exact per-residue
decomposition, net charge at a pH, and residue patterns.

RDKit's average molecular weight, Crippen logP and TPSA of a linear peptide built by
``Chem.MolFromSequence`` are sums of atom contributions, and the atom types of a residue
do not depend on its neighbours, except at the N-terminus where proline's ring nitrogen
is a secondary amine. So every property here is, exactly,

    value(seq) = base + sum_i table[i == 0, seq[i]]

with ``table`` derived from RDKit itself (:func:`residue_tables`). The validator uses the
tables on the denoising hot path (vectorised, partial canvases included) and confirms a
complete design with RDKit on the molecule (:func:`rdkit_properties`); a test pins the
two to agree on real and random sequences.

Net charge at pH 7 is computed from the ionisable groups with the Henderson-Hasselbalch
equation and the EMBOSS pKa table (:data:`PKA`): N-terminal amine 8.6, C-terminal
carboxyl 3.6, Lys 10.8, Arg 12.5, His 6.5, Asp 3.9, Glu 4.1, Cys 8.5, Tyr 10.1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import torch

from constrained.errors import InvalidProblem

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
PROPERTIES = ("mw", "charge", "logp", "tpsa")
UNITS = {"mw": "Da", "charge": "e", "logp": "", "tpsa": "Å²"}
NAMES = {"mw": "molecular weight", "charge": "net charge at pH 7", "logp": "Crippen logP", "tpsa": "TPSA"}

#: EMBOSS pKa values: (pKa, +1 for a base / -1 for an acid)
PKA: dict[str, tuple[float, int]] = {
    "Nterm": (8.6, +1),
    "Cterm": (3.6, -1),
    "K": (10.8, +1),
    "R": (12.5, +1),
    "H": (6.5, +1),
    "D": (3.9, -1),
    "E": (4.1, -1),
    "C": (8.5, -1),
    "Y": (10.1, -1),
}
PH = 7.0


def group_charge(name: str, ph: float = PH) -> float:
    """Mean charge of one ionisable group at ``ph`` (Henderson-Hasselbalch)."""
    pka, sign = PKA[name]
    if sign > 0:
        return 1.0 / (1.0 + 10 ** (ph - pka))
    return -1.0 / (1.0 + 10 ** (pka - ph))


def net_charge(seq: str, ph: float = PH) -> float:
    """Net charge of a linear peptide with free termini at ``ph``."""
    if not seq:
        return 0.0
    total = group_charge("Nterm", ph) + group_charge("Cterm", ph)
    return total + sum(group_charge(a, ph) for a in seq if a in PKA)


@dataclass(frozen=True)
class Properties:
    """Measured properties of one peptide."""

    mw: float  # average molecular weight, Da (RDKit Descriptors.MolWt)
    charge: float  # net charge at pH 7 (EMBOSS pKa)
    logp: float  # Crippen logP (RDKit Crippen.MolLogP)
    tpsa: float  # topological polar surface area, Å² (RDKit CalcTPSA)

    def get(self, name: str) -> float:
        return float(getattr(self, name))


@lru_cache(maxsize=65536)
def rdkit_properties(seq: str) -> Properties:
    """Properties of the molecule RDKit builds from ``seq`` (one-letter codes)."""
    from rdkit import Chem
    from rdkit.Chem import Crippen, Descriptors, rdMolDescriptors

    bad = sorted(set(seq) - set(AMINO_ACIDS))
    if not seq or bad:
        why = f" (unknown residues {bad})" if bad else ""
        raise InvalidProblem(f"not a peptide sequence: {seq!r}{why}")
    mol = Chem.MolFromSequence(seq)
    if mol is None:
        raise InvalidProblem(f"RDKit could not build a molecule from {seq!r}")
    return Properties(mw=Descriptors.MolWt(mol), charge=net_charge(seq), logp=Crippen.MolLogP(mol),
                      tpsa=rdMolDescriptors.CalcTPSA(mol))


@dataclass(frozen=True)
class ResidueTables:
    """Exact additive decomposition of every property.

    base [P]: the value of the peptide minus its residues' contributions (water, termini)
    table [P, 2, 20]: contribution of each residue, at the N-terminus (index 0) or elsewhere (1)
    """

    base: torch.Tensor
    table: torch.Tensor

    def value(self, seq: str) -> torch.Tensor:
        """[P] property values of ``seq`` from the tables."""
        idx = torch.tensor([AMINO_ACIDS.index(a) for a in seq])
        where = torch.ones(len(seq), dtype=torch.long)
        where[0] = 0
        return self.base + self.table[:, where, idx].sum(-1)


@cache
def residue_tables() -> ResidueTables:
    """Derive the per-residue contributions from RDKit (about 100 small molecules).

    A residue's contribution inside the chain is value(GG a GG) - value(GGGGG) plus the
    contribution of glycine, value(G6) - value(G5); its N-terminal correction is
    value(a GGGG) - value(GG a GG).
    """

    def vals(seq: str) -> list[float]:
        p = rdkit_properties(seq)
        return [p.get(k) for k in PROPERTIES]

    g5, g6 = vals("G" * 5), vals("G" * 6)
    gly = [b - a for a, b in zip(g5, g6)]
    table = torch.zeros(len(PROPERTIES), 2, len(AMINO_ACIDS), dtype=torch.float64)
    for j, a in enumerate(AMINO_ACIDS):
        mid, nterm = vals("GG" + a + "GG"), vals(a + "GGGG")
        for k in range(len(PROPERTIES)):
            inner = mid[k] - g5[k] + gly[k]
            table[k, 1, j] = inner
            table[k, 0, j] = inner + nterm[k] - mid[k]
    base = torch.tensor([g5[k] - 5 * gly[k] for k in range(len(PROPERTIES))], dtype=torch.float64)
    return ResidueTables(base=base, table=table)


# ---------------------------------------------------------------------------------------
# residue patterns: fixed-length, regex-like
# ---------------------------------------------------------------------------------------
def parse_pattern(text: str, what: str = "pattern") -> tuple[frozenset[str], ...]:
    """A fixed-length residue pattern to one residue set per position.

    Elements: a residue letter, ``X`` or ``.`` (any residue), ``[KR]`` (one of), ``[^P]``
    (any but). ``N[^P][ST]`` is the N-glycosylation sequon. Raises InvalidProblem naming
    the bad character.
    """
    if not isinstance(text, str) or not text:
        raise InvalidProblem(f"{what} must be a non-empty string, got {text!r}")
    out: list[frozenset[str]] = []
    i = 0
    s = text.strip().upper()
    while i < len(s):
        ch = s[i]
        if ch in AMINO_ACIDS:
            out.append(frozenset(ch))
            i += 1
        elif ch in "X.":
            out.append(frozenset(AMINO_ACIDS))
            i += 1
        elif ch == "[":
            end = s.find("]", i)
            if end < 0:
                raise InvalidProblem(f"{what} {text!r}: '[' at character {i + 1} is never closed")
            body = s[i + 1 : end]
            neg = body.startswith("^")
            letters = body[1:] if neg else body
            bad = sorted(set(letters) - set(AMINO_ACIDS))
            if bad or not letters:
                what_bad = f"unknown residue letters {bad}" if bad else "empty []"
                raise InvalidProblem(f"{what} {text!r}: {what_bad}"
                                     f" in [{body}]; use the 20 one-letter codes {AMINO_ACIDS}")
            chosen = frozenset(AMINO_ACIDS) - frozenset(letters) if neg else frozenset(letters)
            if not chosen:
                raise InvalidProblem(f"{what} {text!r}: [{body}] excludes every residue")
            out.append(chosen)
            i = end + 1
        else:
            raise InvalidProblem(f"{what} {text!r}: unknown residue letter {ch!r} at character {i + 1}; "
                                 f"use the 20 one-letter codes {AMINO_ACIDS}, X or . for any, [..] or [^..]")
    return tuple(out)


def pattern_string(elements: Sequence[frozenset[str]]) -> str:
    """The canonical text of a parsed pattern."""
    parts = []
    for e in elements:
        if len(e) == 1:
            parts.append(next(iter(e)))
        elif len(e) == len(AMINO_ACIDS):
            parts.append("X")
        elif len(e) > len(AMINO_ACIDS) // 2:
            parts.append("[^" + "".join(sorted(set(AMINO_ACIDS) - e)) + "]")
        else:
            parts.append("[" + "".join(sorted(e)) + "]")
    return "".join(parts)


def max_run(seq: str) -> int:
    """Longest run of one residue in ``seq``."""
    best, cur = 0, 0
    for i, a in enumerate(seq):
        cur = cur + 1 if i and seq[i - 1] == a else 1
        best = max(best, cur)
    return best


def find_pattern(seq: str, elements: Sequence[frozenset[str]]) -> int:
    """Start of the first match of a parsed pattern in ``seq``, or -1."""
    m = len(elements)
    for o in range(len(seq) - m + 1):
        if all(seq[o + j] in elements[j] for j in range(m)):
            return o
    return -1
