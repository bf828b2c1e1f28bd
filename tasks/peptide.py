"""Peptide design under motif and RDKit property constraints.

A problem is a *spec* (a dict, or its JSON text)::

    {"length": [12, 20],                     # int, or [min, max] residues
     "motif": {"4": "RGD", "10": "[KR]"},    # 1-based position -> residues from there on
     "allowed": {"1-3": "KRH", "15": "^P"},  # 1-based position or range -> residue set ("^" = all but)
     "exclude": "C",                         # residues barred everywhere
     "windows": {"mw": [1500, 2200], "charge": [2, 6], "logp": [-8, -2], "tpsa": [600, 900]},
     "max_run": 3,                           # longest run of one residue
     "forbidden": ["N[^P][ST]"],             # fixed-length patterns that must not occur
     "label": "amp",                         # conditioning: "amp", "non-amp" or null
     "name": "design"}                       # FASTA header

Patterns use one-letter codes, ``X``/``.`` for any residue, ``[KR]`` and ``[^P]``.

The canvas has ``max_len`` positions (64 by default, what the shipped model was trained
for); a peptide of n residues fills the first n and ``[PAD]`` the rest. Positions past the
spec's maximum length are fixed ``[PAD]``; positions between its minimum and maximum may
hold a residue or ``[PAD]``, and the validator requires padding to be trailing. Motif
residues are fixed tokens; residue sets are per-position domains (``Canvas.allowed``).

Whole-sequence properties are checked by the validator: molecular weight, net charge at
pH 7, Crippen logP and TPSA windows (see :mod:`tasks.peptide_chem`: exact per-residue
decomposition of RDKit's values, confirmed with RDKit on the molecule of every complete
design), the longest residue run, and forbidden patterns. Each violation is localised to
the free positions that can fix it: for a window, the committed residues that push the
value the wrong way, largest contribution first, just enough to cover the excess (at most
``localise`` per window per pass), so the Solver's validator re-noising needs no special
case. ``domains`` narrows residues by bounds (a residue that would put a window out of
reach whatever the other positions hold), trailing padding, runs and patterns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from constrained.canvas import Canvas
from constrained.errors import ConfigError, InvalidProblem
from constrained.layout import Layout
from constrained.report import Check, Report
from constrained.task import Task
from constrained.vocab import Vocab

from .peptide_chem import (
    AMINO_ACIDS,
    NAMES,
    PROPERTIES,
    UNITS,
    find_pattern,
    max_run,
    parse_pattern,
    pattern_string,
    rdkit_properties,
    residue_tables,
)

LABEL_TOKENS = {"amp": "[AMP]", "non-amp": "[NON-AMP]", None: "[ANY]"}
_LABEL_ALIASES = {"amp": "amp", "antimicrobial": "amp", "1": "amp", "true": "amp",
                  "non-amp": "non-amp", "nonamp": "non-amp", "non-antimicrobial": "non-amp", "0": "non-amp",
                  "false": "non-amp", "none": None, "any": None, "": None}
SPEC_KEYS = ("length", "motif", "allowed", "exclude", "windows", "max_run", "forbidden", "label", "name")
EPS = 1e-6
INF = float("inf")


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


def _no_constant(name: str) -> float:
    """json's hook for NaN / Infinity / -Infinity, which JSON itself does not allow: refused."""
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
            problem = json.loads(problem, parse_constant=_no_constant)
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


@cache
def property_directions() -> tuple[torch.Tensor, list[tuple[str, str, float]]]:
    """Directions in property space along which window bounds are propagated: the property
    axes, then every pairwise sum and difference of two properties, each scaled by its spread
    over the residues. -> dirs [D, P] float64, and (p, q, sign of q) for directions P..D-1."""
    P = len(PROPERTIES)
    scale = residue_tables().table[:, 1].std(-1)  # [P]
    dirs, names = [torch.eye(P, dtype=torch.float64)], []
    for p in range(P):
        for q in range(p + 1, P):
            for sign in (1.0, -1.0):
                w = torch.zeros(P, dtype=torch.float64)
                w[p], w[q] = 1.0 / scale[p], sign / scale[q]
                dirs.append(w[None])
                names.append((PROPERTIES[p], PROPERTIES[q], sign))
    return torch.cat(dirs), names


def _check_feasible(spec: PeptideSpec) -> None:
    """Reject what no sequence can meet: windows outside the achievable range, and motif
    residues that already break the run limit or form a forbidden pattern."""
    t = residue_tables()
    idx = {a: j for j, a in enumerate(AMINO_ACIDS)}
    for k, (lo, hi) in spec.windows.items():
        p = PROPERTIES.index(k)
        vmin = vmax = float(t.base[p])
        for i, d in enumerate(spec.domains):
            vals = [float(t.table[p, 0 if i == 0 else 1, idx[a]]) for a in d]
            if i >= spec.min_len:  # may be padding: contributes nothing
                vals.append(0.0)
            vmin += min(vals)
            vmax += max(vals)
        if hi < vmin - EPS or lo > vmax + EPS:
            u = f" {UNITS[k]}" if UNITS[k] else ""
            length = (f"{spec.min_len}" if spec.min_len == spec.max_len else f"{spec.min_len}-{spec.max_len}")
            raise InvalidProblem(f"window {k} [{lo}, {hi}]{u} cannot be met: a peptide of length {length} "
                                 f"with the allowed residues has {NAMES[k]} in [{vmin:.2f}, {vmax:.2f}]{u}")
    # two windows that each can be met but not together (e.g. a heavy peptide with a small TPSA)
    dirs, names = property_directions()
    P = len(PROPERTIES)
    for w, (kp, kq, _) in zip(dirs[P:], names):
        if kp not in spec.windows or kq not in spec.windows:
            continue
        ends = [spec.windows[k] for k in PROPERTIES if k in (kp, kq)]
        ws = [float(w[PROPERTIES.index(k)]) for k in PROPERTIES if k in (kp, kq)]
        box_lo = sum(c * (lo if c > 0 else hi) for c, (lo, hi) in zip(ws, ends))
        box_hi = sum(c * (hi if c > 0 else lo) for c, (lo, hi) in zip(ws, ends))
        if not (math.isfinite(box_lo) or math.isfinite(box_hi)):
            continue
        proj = t.table.permute(1, 2, 0) @ w  # [2, 20]: each residue along w
        vmin = vmax = float(t.base @ w)
        for i, d in enumerate(spec.domains):
            vals = [float(proj[0 if i == 0 else 1, idx[a]]) for a in d]
            if i >= spec.min_len:
                vals.append(0.0)
            vmin += min(vals)
            vmax += max(vals)
        if box_hi < vmin - 1e-5 or box_lo > vmax + 1e-5:
            wp, wq = spec.windows[kp], spec.windows[kq]
            raise InvalidProblem(f"windows {kp} {list(wp)} and {kq} {list(wq)} cannot be met together: no peptide "
                                 f"of the allowed lengths and residues reaches both (each alone can be met)")
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


# ---------------------------------------------------------------------------------------
# the task
# ---------------------------------------------------------------------------------------
class Design(str):
    """A designed sequence (a ``str``) carrying the ``name`` of the spec it was designed for."""

    name: str

    def __new__(cls, sequence: str, name: str = "design") -> Design:
        obj = super().__new__(cls, sequence)
        obj.name = name
        return obj


class Peptide(Task):
    """Peptide design: motif scaffolding under RDKit property windows (FASTA out).

    Input:
        a JSON spec, inline or in a file (.json: one spec or a list of specs; or JSON lines):
        {"length": [12, 20], "motif": {"4": "RGD"}, "allowed": {"1-3": "KRH"}, "exclude": "C",
         "windows": {"mw": [1500, 2300], "charge": [2, 6], "logp": [-9, -2], "tpsa": [600, 1000]},
         "max_run": 3, "forbidden": ["N[^P][ST]"], "label": "amp", "name": "my design"}
        every key but "length" is optional; "name" heads the FASTA record
    Example:
        constrained solve peptide '{"length": [10, 14], "motif": {"3": "RGD"}, "name": "rgd"}' --n 3
    """

    name = "peptide"
    default_model = "peptide"
    #: design, not puzzle solving: sample (so n designs of one spec differ) on a top-k schedule.
    #: No backjumping: a window violation is localised to the few residues that push the
    #: property the wrong way, and re-noising just those (with tabu) repairs it; undoing the
    #: whole latest pass throws away residues that were fine and, late in a run when a pass
    #: commits everything left, loops on whole fresh canvases (measured on specs from
    #: ``generate(seed=1)``, not the benchmark's: 55% -> 98% valid within 64 passes)
    solver_defaults: dict[str, Any] = {"temperature": 0.7, "strategy": "topk", "steps": 16, "backjump": False,
                                       "max_passes": 128}

    def __init__(self, max_len: int = 64, n: int = 1, localise: int = 3, min_train_len: int = 5) -> None:
        """Args:
            max_len: canvas length in residues, 8-512 (the shipped model was trained for 64)
            n: designs per spec: each spec (inline or from a file) is solved n times, sampling anew
            localise: residues implicated per violated property window per pass
            min_train_len: shortest peptide in training data
        """
        if not 8 <= max_len <= 512:
            raise ConfigError(f"max_len must be in [8, 512], got {max_len}")
        if n < 1:
            raise ConfigError(f"n (designs per spec) must be >= 1, got {n}")
        if localise < 1:
            raise ConfigError(f"localise must be >= 1, got {localise}")
        self.max_len, self.n, self.localise, self.min_train_len = max_len, n, localise, min_train_len
        self.vocab = Vocab.build(AMINO_ACIDS, extra=tuple(LABEL_TOKENS.values()))
        L = max_len
        self.layout = Layout(length=L, groups=[list(range(i, min(i + 3, L))) for i in range(L - 2)],
                             group_names=[f"residues {i + 1}-{i + 3}" for i in range(L - 2)])
        self._first = self.vocab.id(AMINO_ACIDS[0])  # residue ids are contiguous from here
        t = residue_tables()
        V = len(self.vocab)
        tab = torch.zeros(L, V, len(PROPERTIES), dtype=torch.float64)  # [L, V, P]; PAD, MASK, extras: 0
        tab[0, self._first : self._first + 20] = t.table[:, 0].T
        tab[1:, self._first : self._first + 20] = t.table[:, 1].T
        self._table, self._base = tab, t.base.clone()
        # bounds are propagated along directions in property space: the property axes (exact,
        # in their units) and every pairwise sum and difference of the properties scaled by
        # their spread over the residues. An additive property's reachable range over the
        # completions is an interval along any direction, so a window box projected onto a
        # direction that misses that interval proves the windows cannot be met together (two
        # correlated windows, e.g. weight and TPSA, that one alone would not rule out).
        P = len(PROPERTIES)
        self._dirs, self._dir_names = property_directions()  # [D, P]; names of directions P..D-1
        self._ptable = tab @ self._dirs.T  # [L, V, D]
        self._pbase = self._base @ self._dirs.T  # [D]
        self._ptable32 = self._ptable.float()
        # slack for rounding along a scaled direction (the axes keep the validator's EPS)
        self._tol = torch.where(torch.arange(len(self._dirs)) < P, EPS, 1e-5 * self._dirs.abs().sum(-1))
        self._train: list | None = None

    # --- problems ------------------------------------------------------------------
    def parse(self, problem: Any) -> PeptideSpec:
        return parse_spec(problem, self.max_len)

    def encode(self, problems: Sequence[Any]) -> Canvas:
        if isinstance(problems, (str, bytes, dict)):
            raise InvalidProblem("encode takes a list of specs; wrap a single spec in a list")
        specs = []
        for k, p in enumerate(problems):
            try:
                specs.append(self.parse(p))
            except InvalidProblem as e:
                raise (InvalidProblem(f"spec {k}: {e}") if len(problems) > 1 else e) from None
        B, L, V = len(specs), self.max_len, len(self.vocab)
        pad, mask = self.vocab.pad_id, self.vocab.mask_id
        tokens = torch.full((B, L), mask, dtype=torch.long)
        fixed = torch.zeros(B, L, dtype=torch.bool)
        allowed = torch.zeros(B, L, V, dtype=torch.bool)
        context = torch.zeros(B, 1, dtype=torch.long)
        for b, s in enumerate(specs):
            for i, d in enumerate(s.domains):
                allowed[b, i, [self.vocab.id(a) for a in d]] = True
                if i >= s.min_len:
                    allowed[b, i, pad] = True
            for i, a in s.fixed.items():
                tokens[b, i] = self.vocab.id(a)
                fixed[b, i] = True
                allowed[b, i] = False
                allowed[b, i, tokens[b, i]] = True
            tokens[b, s.max_len :] = pad
            fixed[b, s.max_len :] = True
            allowed[b, s.max_len :, pad] = True
            context[b, 0] = self.vocab.id(LABEL_TOKENS[s.label])
        return Canvas(tokens=tokens, fixed=fixed, layout=self.layout, vocab=self.vocab, allowed=allowed,
                      context=context, meta=specs)

    def decode(self, canvas: Canvas, tokens: torch.Tensor) -> list[Design]:
        """Tokens to sequences (:class:`Design`, a ``str`` carrying the spec's ``name``): trailing
        padding dropped; interior padding shown as '-' and an empty position as '?' (only in a
        design that did not validate)."""
        out = []
        meta = getattr(canvas, "meta", None) or []  # decode(None, tokens) works too: no names then
        names = [getattr(m, "name", "design") for m in meta]
        for b, row in enumerate(tokens.tolist()):
            chars = []
            for t in row:
                if t == self.vocab.pad_id:
                    chars.append("-")
                elif t == self.vocab.mask_id:
                    chars.append("?")
                else:
                    chars.append(self.vocab.tokens[t] if len(self.vocab.tokens[t]) == 1 else "?")
            out.append(Design("".join(chars).rstrip("-"), names[b] if b < len(names) else "design"))
        return out

    def format_solution(self, solution: str) -> str:
        """FASTA with the measured properties (RDKit) in the header, named by the spec's ``name``
        (whitespace becomes ``_``, so the FASTA identifier is the whole name)."""
        name = "_".join(str(getattr(solution, "name", "design") or "design").split()) or "design"
        if solution and not set(solution) - set(AMINO_ACIDS):
            p = rdkit_properties(solution)
            head = (f">{name} length={len(solution)} mw={p.mw:.2f} charge={p.charge:+.2f} logp={p.logp:.2f} "
                    f"tpsa={p.tpsa:.2f} max_run={max_run(solution)}")
        else:
            head = f">{name} incomplete"
        lines = [solution[i : i + 60] for i in range(0, len(solution), 60)] or [""]
        return "\n".join([head, *lines])

    def read_problems(self, path: Path) -> list[Any]:
        """A JSON spec, a JSON list of specs, or JSON lines; each repeated ``n`` times
        (task option ``--n``: designs per spec)."""
        return self._specs_from_text(Path(path).read_text(encoding="utf-8"), str(path))

    def inline_problems(self, text: str) -> list[Any]:
        """A spec given on the command line (JSON: one spec, a list, or JSON lines), each repeated
        ``n`` times like a file's."""
        return self._specs_from_text(text, "the spec")

    def _specs_from_text(self, text: str, path: str) -> list[Any]:
        try:
            data = json.loads(text, parse_constant=_no_constant)
            specs = data if isinstance(data, list) else [data]
        except RecursionError:
            raise InvalidProblem(f"{path}: nested too deeply to read as JSON") from None
        except json.JSONDecodeError:
            specs = []
            for k, line in enumerate(text.splitlines()):
                if line.strip() and not line.lstrip().startswith("#"):
                    try:
                        specs.append(json.loads(line, parse_constant=_no_constant))
                    except (json.JSONDecodeError, RecursionError) as e:
                        raise InvalidProblem(f"{path}, line {k + 1}: not JSON ({e})") from None
        return [s for s in specs for _ in range(self.n)]

    # --- constraints ---------------------------------------------------------------
    def _specs(self, canvas: Canvas) -> list[PeptideSpec]:
        if not canvas.meta or not all(isinstance(m, PeptideSpec) for m in canvas.meta):
            raise InvalidProblem("a peptide canvas must carry its specs in meta (use Peptide.encode)")
        return canvas.meta

    def _windows(self, specs: list[PeptideSpec], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        lo = torch.tensor([[s.windows.get(k, (-INF, INF))[0] for k in PROPERTIES] for s in specs],
                          dtype=torch.float64, device=device)
        hi = torch.tensor([[s.windows.get(k, (-INF, INF))[1] for k in PROPERTIES] for s in specs],
                          dtype=torch.float64, device=device)
        return lo, hi  # [B, P]

    def _pwindows(self, specs: list[PeptideSpec], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The window boxes projected onto every direction: lo, hi [B, D] (infinite where the
        box is open on the side a direction needs)."""
        lo, hi = self._windows(specs, device)  # [B, P]
        w = self._dirs.to(device)[None]  # [1, D, P]
        lo, hi = lo[:, None, :], hi[:, None, :]
        zero = torch.zeros((), dtype=w.dtype, device=device)
        plo = torch.where(w > 0, w * lo, torch.where(w < 0, w * hi, zero)).sum(-1)
        phi = torch.where(w > 0, w * hi, torch.where(w < 0, w * lo, zero)).sum(-1)
        return plo, phi

    def _order_domain(self, canvas: Canvas, tokens: torch.Tensor, dom: torch.Tensor | None = None) -> torch.Tensor:
        """``dom`` (the static domain by default) narrowed at the empty positions by trailing
        padding: only padding after a pad, no padding before a residue. [B, L, V] bool."""
        pad = self.vocab.pad_id
        dom = (canvas.domain() if dom is None else dom).clone()
        empty = tokens == self.vocab.mask_id
        is_res = (tokens >= self._first) & (tokens < self._first + 20)
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        first_pad = torch.where(tokens == pad, pos, tokens.shape[1]).amin(-1, keepdim=True)
        last_res = torch.where(is_res, pos, -1).amax(-1, keepdim=True)
        after_pad = (pos > first_pad) & empty
        only_pad = torch.zeros(dom.shape[-1], dtype=torch.bool, device=dom.device)
        only_pad[pad] = True
        dom[after_pad] = dom[after_pad] & only_pad
        dom[..., pad] &= ~((pos < last_res) & empty)
        return dom

    def _values(self, canvas: Canvas, tokens: torch.Tensor, dom: torch.Tensor | None = None):
        """Per-position contributions and the bounds of every property direction.

        dom [B, L, V]: what the empty positions may take (the static domain by default; a
        position left with nothing counts with its static domain). Returns contrib [B, L, D]
        (0 where empty); tmin/tmax [B, L, D] over each position's domain; tmin_r/tmax_r the
        same over its residues only (+-inf where it may only be padding); vlo/vhi [B, D] the
        range of each direction over every completion of the filled positions (equal when
        the canvas is complete). The first P directions are the properties themselves."""
        B, L = tokens.shape
        dev = tokens.device
        table = self._ptable.to(dev)  # [L, V, D]
        pad = self.vocab.pad_id
        empty = tokens == self.vocab.mask_id
        pos = torch.arange(L, device=dev).expand(B, L)
        contrib = table[pos, tokens]  # [B, L, D]
        contrib = torch.where(empty.unsqueeze(-1), 0.0, contrib)
        static = canvas.domain()
        dom = static if dom is None else torch.where(dom.any(-1, keepdim=True), dom, static)
        e = empty.nonzero(as_tuple=True)  # only the empty positions need bounds
        rows = dom[e]  # [N, V]
        res = rows.clone()
        res[:, pad] = False
        tab = table[e[1]]  # [N, V, D]
        rd = res.unsqueeze(-1)
        D = table.shape[-1]
        tmin_r = torch.full((B, L, D), INF, dtype=table.dtype, device=dev)
        tmax_r = torch.full((B, L, D), -INF, dtype=table.dtype, device=dev)
        tmin_r[e] = torch.where(rd, tab, INF).amin(1)
        tmax_r[e] = torch.where(rd, tab, -INF).amax(1)
        may_pad = torch.zeros(B, L, 1, dtype=torch.bool, device=dev)
        may_pad[e] = rows[:, pad : pad + 1]
        zero = torch.zeros((), dtype=table.dtype, device=dev)
        filled = ~empty.unsqueeze(-1)
        tmin = torch.where(filled, zero, torch.where(may_pad, tmin_r.clamp(max=zero), tmin_r))
        tmax = torch.where(filled, zero, torch.where(may_pad, tmax_r.clamp(min=zero), tmax_r))
        base = self._pbase.to(dev)
        vlo = base + (contrib + tmin).sum(1)
        vhi = base + (contrib + tmax).sum(1)
        return contrib, tmin, tmax, tmin_r, tmax_r, vlo, vhi

    def _static_range(self, canvas: Canvas, where: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The least and greatest contribution along every direction over each position's static
        domain, at the positions ``where`` [B, L] (0 elsewhere). -> two [B, L, D]."""
        B, L = where.shape
        table = self._ptable.to(where.device)
        e = where.nonzero(as_tuple=True)
        dom = canvas.domain()[e].unsqueeze(-1)  # [N, V, 1]
        tab = table[e[1]]  # [N, V, D]
        lo = torch.zeros(B, L, table.shape[-1], dtype=table.dtype, device=where.device)
        hi = torch.zeros_like(lo)
        lo[e] = torch.where(dom, tab, INF).amin(1)
        hi[e] = torch.where(dom, tab, -INF).amax(1)
        return lo, hi

    def _window_prune(self, canvas: Canvas, tokens: torch.Tensor, dom: torch.Tensor, lo_w: torch.Tensor,
                      hi_w: torch.Tensor) -> torch.Tensor:
        """[B, L, V] bool: candidates that leave some direction's window out of reach whatever
        the other empty positions take from ``dom``. Length is chosen consistently: a residue
        at i means the empty positions before i hold residues, padding at i that every empty
        position from i on is padding. lo_w/hi_w [B, D] (tolerance included)."""
        pad = self.vocab.pad_id
        B, L = tokens.shape
        empty = tokens == self.vocab.mask_id
        emptyf = empty.unsqueeze(-1)  # [B, L, 1]
        _, tmin, tmax, tmin_r, tmax_r, vlo, vhi = self._values(canvas, tokens, dom)
        has_res = torch.isfinite(tmin_r) & emptyf
        zero = torch.zeros((), dtype=tmin.dtype, device=tmin.device)
        gap_lo = torch.where(has_res, tmin_r - tmin, zero)  # what forcing a residue there adds
        gap_hi = torch.where(has_res, tmax_r - tmax, zero)
        pre_lo = gap_lo.cumsum(1) - gap_lo  # over the empty positions before i
        pre_hi = gap_hi.cumsum(1) - gap_hi
        # a residue a at i is out when table[i, a] > ceil or < floor along some direction
        ceil = hi_w[:, None] - (vlo[:, None] + pre_lo - tmin)  # [B, L, D]
        floor = lo_w[:, None] - (vhi[:, None] + pre_hi - tmax)
        e = empty.nonzero(as_tuple=True)
        ceil, floor = ceil[e], floor[e]  # [N, D]
        # compared in float32 (the hot path): loosened by more than float32's rounding, so
        # rounding never rules out a residue that fits (the validator stays exact)
        slack = 1e-4 + 1e-6 * torch.maximum(ceil.abs(), floor.abs()).nan_to_num(posinf=0.0)
        tab = self._ptable32.to(tokens.device)[e[1]]  # [N, V, D]
        ceil32, floor32 = (ceil + slack).float().unsqueeze(1), (floor - slack).float().unsqueeze(1)
        out_rows = ((tab > ceil32) | (tab < floor32)).any(-1)  # [N, V]
        # padding at i: every empty position from i on is padding
        suf_lo = tmin.flip(1).cumsum(1).flip(1)
        suf_hi = tmax.flip(1).cumsum(1).flip(1)
        pad_out = ((vlo[:, None] - suf_lo > hi_w[:, None]) | (vhi[:, None] - suf_hi < lo_w[:, None])).any(-1)
        out_rows[:, pad] = pad_out[e]
        out = torch.zeros(B, L, dom.shape[-1], dtype=torch.bool, device=tokens.device)
        out[e] = out_rows
        return out

    def _localise(self, score: torch.Tensor, need: torch.Tensor) -> torch.Tensor:
        """score [B, L, P] (how much each position moves a property the wrong way), need [B, P]
        (how far out of its window): the largest contributors, just enough to cover the need,
        at most ``localise`` per property. -> [B, L] bool."""
        B, L, P = score.shape
        out = torch.zeros(B, L, dtype=torch.bool, device=score.device)
        rank = torch.arange(L, device=score.device)
        for p in range(P):
            n = need[:, p : p + 1]
            if not bool((n > EPS).any()):
                continue
            vals, idx = score[..., p].sort(-1, descending=True)
            before = vals.cumsum(-1) - vals
            pick = (n > EPS) & (before < n) & (rank < self.localise) & (vals > EPS)
            out |= torch.zeros_like(out).scatter(1, idx, pick)
        return out

    def _runs(self, tokens: torch.Tensor, is_res: torch.Tensor):
        """Runs of one residue: k [B, L] index inside its run, total [B, L] its run's length."""
        B, L = tokens.shape
        same = torch.zeros_like(is_res)
        same[:, 1:] = is_res[:, 1:] & is_res[:, :-1] & (tokens[:, 1:] == tokens[:, :-1])
        run_id = (~same).long().cumsum(-1) - 1
        pos = torch.arange(L, device=tokens.device).expand(B, L)
        start = torch.full((B, L), L, dtype=torch.long, device=tokens.device).scatter_reduce(
            1, run_id, pos, reduce="amin")
        total = torch.zeros(B, L, dtype=torch.long, device=tokens.device).scatter_add(
            1, run_id, is_res.long())
        return pos - start.gather(1, run_id), total.gather(1, run_id), run_id

    def _pattern_members(self, pat: tuple[frozenset[str], ...], device: torch.device) -> torch.Tensor:
        m = torch.zeros(len(pat), len(self.vocab), dtype=torch.bool, device=device)
        for j, e in enumerate(pat):
            m[j, [self.vocab.id(a) for a in e]] = True
        return m  # [m, V]

    def _pattern_hits(self, tokens: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        """[B, L, m] bool: does the token at each position match each pattern element."""
        return members.T[tokens]

    def validate(self, canvas: Canvas, tokens: torch.Tensor, messages: bool = False) -> Report:
        specs = self._specs(canvas)
        B, L = tokens.shape
        dev = tokens.device
        pad, mask = self.vocab.pad_id, self.vocab.mask_id
        fixed = canvas.fixed
        filled = tokens != mask
        is_pad = tokens == pad
        is_res = (tokens >= self._first) & (tokens < self._first + 20)
        pos = torch.arange(L, device=dev)
        viol = torch.zeros(B, L, dtype=torch.bool, device=dev)

        # residues each position may hold (motif, allowed sets, length)
        in_dom = canvas.domain().gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        bad_dom = filled & ~in_dom
        viol |= bad_dom & ~fixed

        # padding only at the end
        first_pad = torch.where(is_pad, pos, L).amin(-1)
        last_res = torch.where(is_res, pos, -1).amax(-1)
        bad_order = first_pad < last_res
        viol |= (bad_order[:, None] & (pos >= first_pad[:, None]) & (pos <= last_res[:, None])
                 & filled & ~fixed)

        # property windows: bounds over completions; localised to the committed free residues
        # (along the properties and their pairwise combinations: see __init__)
        contrib, _, _, _, _, vlo, vhi = self._values(canvas, tokens, self._order_domain(canvas, tokens))
        tmin, tmax = self._static_range(canvas, filled & ~fixed)  # what re-noising each could change
        lo_w, hi_w = self._pwindows(specs, dev)
        tol = self._tol.to(dev)
        over = vlo - hi_w  # [B, D] > 0: too high even with the lowest completion
        under = lo_w - vhi
        over = torch.where(over > tol, over, 0.0)
        under = torch.where(under > tol, under, 0.0)
        free = (filled & ~fixed).unsqueeze(-1)
        zero = torch.zeros_like(contrib)
        viol |= self._localise(torch.where(free, contrib - tmin, zero), over)
        viol |= self._localise(torch.where(free, tmax - contrib, zero), under)
        bad_window = (over > 0) | (under > 0)  # [B, D]

        # runs of one residue
        mr = torch.tensor([s.max_run or L + 1 for s in specs], device=dev).unsqueeze(-1)
        k, total, run_id = self._runs(tokens, is_res)
        over_run = is_res & (total > mr)
        breaker = (k % (mr + 1)) == mr
        fixed_breaker = torch.zeros(B, L, dtype=torch.long, device=dev).scatter_add(
            1, run_id, (over_run & breaker & fixed).long()).gather(1, run_id) > 0
        viol |= over_run & ~fixed & (breaker | fixed_breaker)
        bad_run = over_run.any(-1)

        # forbidden patterns
        bad_pat = torch.zeros(B, dtype=torch.bool, device=dev)
        pat_at: list[dict[str, int]] = [{} for _ in range(B)]
        for pat in {p for s in specs for p in s.forbidden}:
            has = torch.tensor([pat in s.forbidden for s in specs], device=dev)
            m = len(pat)
            if m > L:
                continue
            hits = self._pattern_hits(tokens, self._pattern_members(pat, dev))  # [B, L, m]
            match = has[:, None].expand(B, L - m + 1).clone()
            for j in range(m):
                match &= hits[:, j : L - m + 1 + j, j]
            in_match = torch.zeros_like(viol)
            for j, e in enumerate(pat):
                if len(e) < len(AMINO_ACIDS):  # wildcards cannot fix a match
                    in_match[:, j : L - m + 1 + j] |= match
            viol |= in_match & ~fixed
            bad_pat |= match.any(-1)
            if messages:
                for b in match.any(-1).nonzero().squeeze(-1).tolist():
                    pat_at[b][pattern_string(pat)] = int(match[b].nonzero()[0]) + 1

        ok = filled.all(-1) & ~bad_dom.any(-1) & ~bad_order & ~bad_window.any(-1) & ~bad_run & ~bad_pat
        # confirm with RDKit on the molecule
        rd_msgs: dict[int, list[str]] = {}
        if bool(ok.any()):
            seqs = self.decode(canvas, tokens)
            for b in ok.nonzero().squeeze(-1).tolist():
                problems = specs[b].check(seqs[b])
                if problems:
                    ok[b] = False
                    rd_msgs[b] = [f"RDKit check: {p}" for p in problems]

        msgs: list[list[str]] = []
        checks: list[list[Check]] = []
        if messages:
            for b in range(B):
                checks.append(self._checks(specs[b], b, filled, bad_dom, bad_order, bad_window, bad_run, bad_pat,
                                           b in rd_msgs))
                out: list[str] = []
                for i in (bad_dom[b]).nonzero().squeeze(-1).tolist():
                    tok = self.vocab.tokens[int(tokens[b, i])]
                    out.append(f"position {i + 1}: {tok} is not allowed there")
                if bad_order[b]:
                    out.append(f"padding at position {int(first_pad[b]) + 1} before residue at position "
                               f"{int(last_res[b]) + 1}: a peptide must be contiguous")
                for p, key in enumerate(PROPERTIES):
                    if bad_window[b, p]:
                        u = f" {UNITS[key]}" if UNITS[key] else ""
                        lo, hi = specs[b].windows[key]
                        val = (f"{float(vlo[b, p]):.2f}" if float(vlo[b, p]) == float(vhi[b, p])
                               else f"in [{float(vlo[b, p]):.2f}, {float(vhi[b, p]):.2f}]")
                        side = "above" if over[b, p] > 0 else "below"
                        out.append(f"{NAMES[key]} {val}{u} {side} the window [{lo}, {hi}]{u}")
                if not bad_window[b, : len(PROPERTIES)].any():
                    for d, (kp, kq, sign) in enumerate(self._dir_names, start=len(PROPERTIES)):
                        if bad_window[b, d]:
                            high = "high" if over[b, d] > 0 else "low"
                            why = (f"every completion is too {high} in {NAMES[kp]} and {NAMES[kq]} combined"
                                   if sign > 0 else
                                   f"every completion has too {high} a {NAMES[kp]} for its {NAMES[kq]}")
                            out.append(f"the {NAMES[kp]} and {NAMES[kq]} windows cannot both be met: {why}")
                if bad_run[b]:
                    out.append(f"a run of {int(total[b][over_run[b]].max())} identical residues "
                               f"(max_run {specs[b].max_run})")
                for text, at in pat_at[b].items():
                    out.append(f"forbidden motif {text} at position {at}")
                n_empty = int((~filled[b]).sum())
                if n_empty:
                    out.append(f"{n_empty} positions empty")
                out += rd_msgs.get(b, [])
                msgs.append(out)
        return Report(ok=ok, violations=viol, messages=msgs, checks=checks)

    @staticmethod
    def _checks(spec: PeptideSpec, b: int, filled, bad_dom, bad_order, bad_window, bad_run, bad_pat,
                rdkit_refused: bool) -> list[Check]:
        """The named checks of item ``b``: complete, residues allowed, each window of the spec, runs,
        forbidden motifs, and RDKit's confirmation on the molecule."""
        n_empty = int((~filled[b]).sum())
        out = [Check("complete", not n_empty, f"({n_empty} positions empty)" if n_empty else ""),
               Check("residues allowed", not bool(bad_dom[b].any()) and not bool(bad_order[b]))]
        for p, key in enumerate(PROPERTIES):
            if key in spec.windows:
                out.append(Check(f"{key} window", not bool(bad_window[b, p])))
        if spec.max_run:
            out.append(Check(f"max_run {spec.max_run}", not bool(bad_run[b])))
        if spec.forbidden:
            out.append(Check("no forbidden motif", not bool(bad_pat[b])))
        if all(c.ok for c in out):
            out.append(Check("RDKit confirms", not rdkit_refused))
        return out

    def domains(self, canvas: Canvas, tokens: torch.Tensor) -> torch.Tensor:
        """Static domains narrowed by the filled positions: trailing padding, window bounds,
        runs and forbidden patterns. [B, L, V] bool (what empty positions may still take)."""
        specs = self._specs(canvas)
        B, L = tokens.shape
        dev = tokens.device
        mask = self.vocab.mask_id
        dom = canvas.domain().clone()
        filled = tokens != mask
        empty = ~filled
        is_res = (tokens >= self._first) & (tokens < self._first + 20)

        # padding is trailing: nothing but padding after a pad, no padding before a residue
        dom = self._order_domain(canvas, tokens, dom)

        # window bounds: a residue that puts a window (or a pair of windows) out of reach
        # whatever the others hold; the bounds tighten with the domain, so twice
        if any(s.windows for s in specs):
            lo_w, hi_w = self._pwindows(specs, dev)
            lo_w, hi_w = lo_w - self._tol.to(dev), hi_w + self._tol.to(dev)
            for _ in range(2):
                dom &= ~(self._window_prune(canvas, tokens, dom, lo_w, hi_w) & empty.unsqueeze(-1))

        # runs: a residue that would extend a neighbouring run past max_run
        runs = [s.max_run for s in specs]
        if any(r is not None for r in runs):
            mr = torch.tensor([r or L + 1 for r in runs], device=dev)[:, None, None]
            k, total, _ = self._runs(tokens, is_res)
            left_len = torch.zeros(B, L, dtype=torch.long, device=dev)
            left_len[:, 1:] = torch.where(is_res[:, :-1], k[:, :-1] + 1, 0)
            right_len = torch.zeros_like(left_len)
            right_len[:, :-1] = torch.where(is_res[:, 1:], total[:, 1:] - k[:, 1:], 0)
            left_tok = torch.zeros_like(tokens)
            left_tok[:, 1:] = tokens[:, :-1]
            right_tok = torch.zeros_like(tokens)
            right_tok[:, :-1] = tokens[:, 1:]
            V = len(self.vocab)
            count = torch.zeros(B, L, V, dtype=torch.long, device=dev)
            count.scatter_add_(-1, left_tok.unsqueeze(-1), left_len.unsqueeze(-1))
            count.scatter_add_(-1, right_tok.unsqueeze(-1), right_len.unsqueeze(-1))
            count[..., : self._first] = 0
            dom &= ~((count + 1 > mr) & empty.unsqueeze(-1))

        # forbidden patterns: the last open position of an otherwise complete match
        for pat in {p for s in specs for p in s.forbidden}:
            m = len(pat)
            if m > L:
                continue
            has = torch.tensor([pat in s.forbidden for s in specs], device=dev)
            members = self._pattern_members(pat, dev)
            hits = self._pattern_hits(tokens, members)  # [B, L, m]
            O = L - m + 1
            cnt = torch.zeros(B, O, dtype=torch.long, device=dev)
            for j in range(m):
                cnt += hits[:, j : j + O, j].long()
            for j in range(m):
                open_j = empty[:, j : j + O] & (cnt == m - 1) & has[:, None]  # [B, O]
                sl = dom[:, j : j + O]
                dom[:, j : j + O] = sl & ~(open_j.unsqueeze(-1) & members[j])
        return dom

    # --- data ----------------------------------------------------------------------
    @property
    def data_card(self) -> str:
        """Where the training data comes from (written into the model card)."""
        from .peptide_data import describe

        return describe(self.max_len)

    def _train_set(self) -> list:
        if self._train is None:
            from .peptide_data import split

            self._train = [p for p in split(self.max_len, held_out=False) if len(p.seq) >= self.min_train_len]
        return self._train

    def training_example(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A real training sequence with a random length range (positions past its maximum
        fixed padding; those between its length and the maximum free, to learn where a
        peptide ends), random motif residues fixed, and its label as context (or none)."""
        data = self._train_set()
        pep = data[int(rng.integers(len(data)))]
        seq, n, L = pep.seq, len(pep.seq), self.max_len
        tokens = torch.full((L,), self.vocab.pad_id, dtype=torch.long)
        tokens[:n] = torch.tensor([self.vocab.id(a) for a in seq])
        hi = n if rng.random() < 0.4 else min(L, n + int(rng.integers(0, 12)))
        fixed = torch.zeros(L, dtype=torch.bool)
        fixed[hi:] = True
        r = rng.random()
        if r < 0.35:  # contiguous motif segments
            for _ in range(int(rng.integers(1, 4))):
                w = int(rng.integers(1, min(8, n) + 1))
                s = int(rng.integers(0, n - w + 1))
                fixed[s : s + w] = True
        elif r < 0.7:  # scattered residues
            frac = rng.uniform(0.0, 0.4)
            fixed[:n] |= torch.from_numpy(rng.random(n) < frac)
        label = ("amp" if pep.label == 1 else "non-amp") if rng.random() < 0.8 else None
        context = torch.tensor([self.vocab.id(LABEL_TOKENS[label])])
        return {"tokens": tokens, "fixed": fixed, "context": context}

    def generate(self, n: int, seed: int = 0, min_windows: int = 2, max_windows: int = 4,
                 extras: bool = True) -> list[tuple[dict[str, Any], str]]:
        """``n`` (spec, real sequence) pairs from held-out sequences: a motif (1-2 segments of
        the sequence's own residues) and ``min_windows``-``max_windows`` property windows drawn
        around its values, so the real sequence meets the spec; with ``extras``, sometimes
        max_run, an N-glycosylation ban or no Cys when the sequence allows them."""
        from .peptide_data import split

        pool = [p for p in split(self.max_len, held_out=True) if len(p.seq) >= 8]
        rng = np.random.default_rng(seed)
        widths = {"mw": 0.08, "charge": 1.5, "logp": 2.0, "tpsa": 0.08}  # relative for mw/tpsa
        out = []
        for _ in range(n):
            pep = pool[int(rng.integers(len(pool)))]
            seq, m = pep.seq, len(pep.seq)
            props = rdkit_properties(seq)
            spec: dict[str, Any] = {}
            if rng.random() < 0.5:
                spec["length"] = m
            else:
                spec["length"] = [max(1, m - int(rng.integers(0, 6))),
                                  min(self.max_len, m + int(rng.integers(0, 6)))]
            motif = {}
            for _ in range(int(rng.integers(1, 3))):
                w = int(rng.integers(2, 6))
                s = int(rng.integers(0, m - w + 1))
                motif[str(s + 1)] = seq[s : s + w]
            spec["motif"] = _merge_motif(motif)
            k = int(rng.integers(min_windows, max_windows + 1))
            windows = {}
            for key in rng.permutation(PROPERTIES)[:k]:
                v = props.get(str(key))
                w = widths[str(key)] * (abs(v) if key in ("mw", "tpsa") else 1.0)
                lo = v - w * rng.uniform(0.2, 1.0)
                hi = v + w * rng.uniform(0.2, 1.0)
                windows[str(key)] = [round(lo, 2), round(hi, 2)]
            spec["windows"] = windows
            if extras:
                if rng.random() < 0.3:
                    spec["max_run"] = max(2, max_run(seq))
                if rng.random() < 0.3 and find_pattern(seq, parse_pattern("N[^P][ST]")) < 0:
                    spec["forbidden"] = ["N[^P][ST]"]
                if rng.random() < 0.3 and "C" not in seq:
                    spec["exclude"] = "C"
            spec["label"] = "amp" if pep.label == 1 else "non-amp"
            out.append((spec, seq))
        return out


def _merge_motif(motif: dict[str, str]) -> dict[str, str]:
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
