"""Peptide specs: the JSON a user writes, parsed and checked into a :class:`PeptideSpec`.

A spec (a dict, or its JSON text)::

    {"length": [12, 20],                     # int, or [min, max] residues
     "motif": {"4": "RGD", "10": "[KR]"},    # 1-based position -> residues from there on
     "allowed": {"1-3": "KRH", "15": "^P"},  # 1-based position or range -> residue set ("^" = all but)
     "exclude": "C",                         # residues barred everywhere
     "windows": {"mw": [1500, 2200], "charge": [2, 6], "logp": [-8, -2], "tpsa": [600, 900]},
     "max_run": 3,                           # longest run of one residue
     "forbidden": ["N[^P][ST]"],             # fixed-length patterns that must not occur
     "label": "amp",                         # conditioning: "amp", "non-amp" or null
     "name": "design"}                       # FASTA header

Patterns use one-letter codes, ``X``/``.`` for any residue, ``[KR]`` and ``[^P]``. A spec that no
peptide can meet (windows out of reach, alone or together; a motif that already breaks ``max_run`` or
holds a forbidden pattern) is refused with InvalidProblem naming why.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from constrained.errors import InvalidProblem

from .peptide_bounds import EPS, INF, check_windows
from .peptide_chem import (
    AMINO_ACIDS,
    NAMES,
    PROPERTIES,
    find_pattern,
    max_run,
    parse_pattern,
    pattern_string,
    rdkit_properties,
)

LABEL_TOKENS = {"amp": "[AMP]", "non-amp": "[NON-AMP]", None: "[ANY]"}
_LABEL_ALIASES = {"amp": "amp", "antimicrobial": "amp", "1": "amp", "true": "amp",
                  "non-amp": "non-amp", "nonamp": "non-amp", "non-antimicrobial": "non-amp", "0": "non-amp",
                  "false": "non-amp", "none": None, "any": None, "": None}
SPEC_KEYS = ("length", "motif", "allowed", "exclude", "windows", "max_run", "forbidden", "label", "name")


@dataclass(frozen=True)
class PeptideSpec:
    """A parsed, checked spec. Positions are 0-based here (1-based in the JSON)."""

    min_len: int
    max_len: int
    domains: tuple[frozenset[str], ...]  # residues each position 0..max_len-1 may hold
    fixed: dict[int, str] = field(default_factory=dict)  # motif residues
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    max_run: int | None = None
    forbidden: tuple[tuple[frozenset[str], ...], ...] = ()
    label: str | None = None
    name: str = "design"

    def check(self, seq: str) -> list[str]:
        """Readable reasons ``seq`` breaks this spec (empty when it meets every constraint);
        computed directly (RDKit for the properties), independent of the canvas."""
        out = []
        if not self.min_len <= len(seq) <= self.max_len:
            out.append(f"length {len(seq)} outside [{self.min_len}, {self.max_len}]")
        bad = sorted(set(seq) - set(AMINO_ACIDS))
        if bad:
            return out + [f"unknown residues {bad}"]
        for i, a in enumerate(seq[: self.max_len]):
            if a not in self.domains[i]:
                out.append(f"position {i + 1}: {a} not allowed")
        if seq:
            props = rdkit_properties(seq)
            for k, (lo, hi) in self.windows.items():
                v = props.get(k)
                if not lo - EPS <= v <= hi + EPS:
                    out.append(f"{NAMES[k]} {v:.2f} outside [{lo}, {hi}]")
        if self.max_run is not None and max_run(seq) > self.max_run:
            out.append(f"a run of {max_run(seq)} identical residues (max {self.max_run})")
        for pat in self.forbidden:
            o = find_pattern(seq, pat)
            if o >= 0:
                out.append(f"forbidden motif {pattern_string(pat)} at position {o + 1}")
        return out


def _position_key(key: Any, upto: int, what: str) -> list[int]:
    """'5' -> [4]; '3-7' -> [2..6]; '*' -> all (1-based in, 0-based out)."""
    text = str(key).strip()
    if text == "*":
        return list(range(upto))
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-", 1))
        else:
            a = b = int(text)
    except ValueError:
        raise InvalidProblem(f"{what}: position {key!r} is not a 1-based number, "
                             "a range 'a-b' or '*'") from None
    if a < 1 or b < a:
        raise InvalidProblem(f"{what}: position {key!r} must be >= 1 (positions are 1-based) and a <= b")
    if b > upto:
        raise InvalidProblem(f"{what}: position {key!r} is outside the maximum length {upto}")
    return list(range(a - 1, b))


def _residue_set(value: Any, what: str) -> frozenset[str]:
    if isinstance(value, (list, tuple)):
        value = "".join(str(v) for v in value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidProblem(f"{what} must be residue letters such as 'KR' or '^C', got {value!r}")
    text = value.strip().upper()
    return parse_pattern(f"[{text}]", what)[0]


def no_json_constant(name: str) -> float:
    """``json.loads``' ``parse_constant`` hook for NaN / Infinity / -Infinity, which JSON itself does
    not allow: refused (InvalidProblem)."""
    raise InvalidProblem(f"a peptide spec may not hold {name} (JSON has no non-finite numbers); "
                         "use null for an open window end")


def parse_spec(problem: Any, canvas_len: int) -> PeptideSpec:
    """A spec dict (or its JSON text, or a PeptideSpec) to a checked :class:`PeptideSpec`.
    Raises InvalidProblem naming what is wrong, including windows no peptide of the
    allowed lengths and residues can meet."""
    if isinstance(problem, PeptideSpec):
        return problem
    if isinstance(problem, (str, bytes)):
        try:
            problem = json.loads(problem, parse_constant=no_json_constant)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise InvalidProblem(f"a peptide spec must be JSON: {e}") from None
    if not isinstance(problem, dict):
        raise InvalidProblem(f"a peptide spec must be a JSON object, got {type(problem).__name__}")
    unknown = sorted(set(problem) - set(SPEC_KEYS))
    if unknown:
        raise InvalidProblem(f"unknown spec key(s) {unknown}; known: {list(SPEC_KEYS)}")

    # length
    length = problem.get("length")
    if isinstance(length, int) and not isinstance(length, bool):
        lo_len = hi_len = length
    elif (isinstance(length, (list, tuple)) and len(length) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in length)):
        lo_len, hi_len = length
    else:
        raise InvalidProblem(f"length must be an int or [min, max], got {length!r}")
    if lo_len < 1 or hi_len < lo_len:
        raise InvalidProblem(f"length {length!r}: need 1 <= min <= max")
    if hi_len > canvas_len:
        raise InvalidProblem(f"length {length!r} exceeds the canvas of {canvas_len} residues "
                             f"(task option max_len; the shipped model is trained for 64)")

    domains = [set(AMINO_ACIDS) for _ in range(hi_len)]
    why: list[list[str]] = [[] for _ in range(hi_len)]
    exclude = problem.get("exclude")
    if exclude:
        ex = _residue_set(exclude, "exclude")
        for i in range(hi_len):
            domains[i] -= ex
            why[i].append(f"excluded {''.join(sorted(ex))}")

    allowed = problem.get("allowed") or {}
    if not isinstance(allowed, dict):
        raise InvalidProblem(f"allowed must map positions to residue sets, got {allowed!r}")
    for key, value in allowed.items():
        s = _residue_set(value, f"allowed[{key!r}]")
        for i in _position_key(key, hi_len, "allowed"):
            domains[i] &= s
            why[i].append(f"allowed {''.join(sorted(s))}")

    motif = problem.get("motif") or {}
    if not isinstance(motif, dict):
        raise InvalidProblem(f"motif must map 1-based positions to residues, got {motif!r}")
    fixed: dict[int, str] = {}
    last = -1
    for key, value in motif.items():
        try:
            start = int(str(key)) - 1
        except ValueError:
            raise InvalidProblem(f"motif position {key!r} is not a number (positions are 1-based)") from None
        elems = parse_pattern(value, f"motif at position {key}")
        if start < 0:
            raise InvalidProblem(f"motif position {key!r} must be >= 1 (positions are 1-based)")
        if start + len(elems) > hi_len:
            raise InvalidProblem(f"motif {value!r} at position {key} ends at position {start + len(elems)}, "
                                 f"outside the maximum length {hi_len}")
        for j, e in enumerate(elems):
            i = start + j
            domains[i] &= e
            why[i].append(f"motif {pattern_string([e])}")
            if len(e) == 1:
                fixed[i] = next(iter(e))
        last = max(last, start + len(elems) - 1)
    lo_len = max(lo_len, last + 1)

    for i, d in enumerate(domains):
        if not d:
            raise InvalidProblem(f"position {i + 1}: no residue is left ({'; '.join(why[i])})")
    for i, a in fixed.items():
        if a not in domains[i]:
            raise InvalidProblem(f"position {i + 1}: motif residue {a} is not allowed there "
                                 f"({'; '.join(why[i])})")

    windows: dict[str, tuple[float, float]] = {}
    raw = problem.get("windows") or {}
    if not isinstance(raw, dict):
        raise InvalidProblem(f"windows must map property names to [lo, hi], got {raw!r}")
    for k, w in raw.items():
        if k not in PROPERTIES:
            raise InvalidProblem(f"unknown window {k!r}; known: {list(PROPERTIES)}")
        if not (isinstance(w, (list, tuple)) and len(w) == 2
                and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in w)):
            raise InvalidProblem(f"window {k!r} must be [lo, hi] (null for an open end), got {w!r}")
        if any(v is not None and not math.isfinite(v) for v in w):
            raise InvalidProblem(f"window {k!r} {list(w)} holds a non-finite number; use null for an open end")
        lo = -INF if w[0] is None else float(w[0])
        hi = INF if w[1] is None else float(w[1])
        if lo > hi:
            raise InvalidProblem(f"window {k!r} {list(w)} has lo > hi")
        windows[k] = (lo, hi)

    run = problem.get("max_run")
    if run is not None and (not isinstance(run, int) or isinstance(run, bool) or run < 1):
        raise InvalidProblem(f"max_run must be an int >= 1, got {run!r}")
    forbidden_raw = problem.get("forbidden") or []
    if isinstance(forbidden_raw, str):
        forbidden_raw = [forbidden_raw]
    if not isinstance(forbidden_raw, (list, tuple)):
        raise InvalidProblem(f"forbidden must be a pattern or a list of patterns, got {forbidden_raw!r}")
    forbidden = tuple(parse_pattern(p, f"forbidden motif {p!r}") for p in forbidden_raw)
    label_raw = problem.get("label")
    key = str(label_raw).strip().lower() if label_raw is not None else ""
    if key not in _LABEL_ALIASES:
        raise InvalidProblem(f"label must be 'amp', 'non-amp' or null, got {label_raw!r}")
    name = str(problem.get("name") or "design")

    spec = PeptideSpec(min_len=lo_len, max_len=hi_len, domains=tuple(frozenset(d) for d in domains),
                       fixed=fixed, windows=windows, max_run=run, forbidden=forbidden,
                       label=_LABEL_ALIASES[key], name=name)
    _check_feasible(spec)
    return spec


def _check_feasible(spec: PeptideSpec) -> None:
    """Reject what no sequence can meet: windows outside the achievable range (alone or
    together), and motif residues that already break the run limit or form a forbidden pattern."""
    check_windows(spec)
    runs = sorted(spec.fixed)
    if spec.max_run is not None:
        cur = 0
        for j, i in enumerate(runs):
            cur = cur + 1 if j and runs[j - 1] == i - 1 and spec.fixed[i - 1] == spec.fixed[i] else 1
            if cur > spec.max_run:
                raise InvalidProblem(f"the motif itself has a run of {cur} {spec.fixed[i]} ending at "
                                     f"position {i + 1}, longer than max_run {spec.max_run}")
    for pat in spec.forbidden:
        for o in range(spec.max_len - len(pat) + 1):
            if all(o + j in spec.fixed and spec.fixed[o + j] in e for j, e in enumerate(pat)):
                raise InvalidProblem(f"the motif itself contains the forbidden pattern {pattern_string(pat)} "
                                     f"at position {o + 1}")


def merge_motif(motif: dict[str, str]) -> dict[str, str]:
    """Overlapping motif segments (all cut from one sequence) merged into disjoint ones."""
    cells: dict[int, str] = {}
    for k, v in motif.items():
        for j, a in enumerate(v):
            cells[int(k) - 1 + j] = a
    out: dict[str, str] = {}
    start, prev = -2, -2
    for i in sorted(cells):
        if i != prev + 1:
            start = i
            out[str(start + 1)] = ""
        out[str(start + 1)] += cells[i]
        prev = i
    return out
