"""Peptide design under motif and RDKit property constraints: the task.

A problem is a *spec* (a dict, or its JSON text; parsed and checked by :mod:`tasks.peptide_spec`)::

    {"length": [12, 20], "motif": {"4": "RGD"}, "allowed": {"1-3": "KRH"}, "exclude": "C",
     "windows": {"mw": [1500, 2200], "charge": [2, 6]}, "max_run": 3, "forbidden": ["N[^P][ST]"],
     "label": "amp", "name": "design"}

The canvas has ``max_len`` positions (64 by default, what the shipped model was trained
for); a peptide of n residues fills the first n and ``[PAD]`` the rest. Positions past the
spec's maximum length are fixed ``[PAD]``; positions between its minimum and maximum may
hold a residue or ``[PAD]``, and the validator requires padding to be trailing. Motif
residues are fixed tokens; residue sets are per-position allowed values (``Canvas.allowed``).

The validator composes the constraint library (:mod:`constrained.constraints`): trailing padding
(:class:`TrailingPadding`), the property windows as bounded sums (:class:`BoundedSum`, built by
:mod:`tasks.peptide_bounds`: molecular weight, net charge at pH 7, Crippen logP and TPSA, exact
per-residue decompositions of RDKit's values, :mod:`tasks.peptide_chem`), the longest residue run
(:class:`MaxRun`) and forbidden patterns (:class:`ForbiddenPatterns`); a complete design is then
confirmed with RDKit on the molecule. Each violation is localised to the free positions that can
fix it: for a window, the committed residues that push the value the wrong way, largest
contribution first, just enough to cover the excess (at most ``localise`` per window per pass), so
the Solver's validator re-noising needs no special case. ``domains`` ANDs the same constraints'
candidates: bounds (a residue that would put a window out of reach whatever the other positions
hold), trailing padding, runs and patterns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from constrained.canvas import Canvas
from constrained.constraints import (
    BoundedSum,
    ForbiddenPatterns,
    MaxRun,
    PatternCheck,
    RunCheck,
    SumCheck,
    TrailingPadding,
    Verdict,
    value_onehot,
)
from constrained.errors import ConfigError, InvalidProblem
from constrained.layout import Layout
from constrained.report import Check, Report
from constrained.task import Task
from constrained.vocab import Vocab

from .peptide_bounds import EPS, INF, PropertyWindows, property_directions
from .peptide_chem import (
    AMINO_ACIDS,
    PROPERTIES,
    find_pattern,
    max_run,
    parse_pattern,
    pattern_string,
    rdkit_properties,
)
from .peptide_spec import LABEL_TOKENS, SPEC_KEYS, PeptideSpec, merge_motif, no_json_constant, parse_spec

# names other modules import from here (the task's module) since before the split
__all__ = ["EPS", "INF", "LABEL_TOKENS", "SPEC_KEYS", "Design", "Peptide", "PeptideSpec", "merge_motif", "parse_spec",
           "property_directions"]


class _Constraints(NamedTuple):
    """The rules of one batch of specs, over the canvas's one-hot views (see ``Peptide._views``)."""

    order: TrailingPadding
    windows: BoundedSum
    runs: MaxRun
    patterns: ForbiddenPatterns


class _Findings(NamedTuple):
    """What ``Peptide.validate`` found, for its messages and named checks."""

    filled: torch.Tensor  # [B, L] bool
    bad_dom: torch.Tensor  # [B, L] bool: a token its position's domain does not allow
    order: Verdict
    windows: SumCheck
    runs: RunCheck
    patterns: PatternCheck
    rdkit: dict[int, list[str]]  # item -> RDKit's objections to a design the tables passed


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
    item_name = "spec"
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
        V = len(self.vocab)
        self._residues = torch.zeros(V, dtype=torch.bool)  # [V] the residue tokens
        self._residues[self._first : self._first + 20] = True
        self._reads = self._residues.clone()  # [V] what padding, runs and patterns read: residues, [PAD]
        self._reads[self.vocab.pad_id] = True
        # the windows as bounded sums along the properties and their pairwise combinations
        self._windows = PropertyWindows(L, self.vocab)
        self._patterns: dict[tuple, torch.Tensor] = {}  # forbidden pattern -> its [m, V] member matrix
        self._train: list | None = None

    # --- problems ------------------------------------------------------------------
    def parse(self, problem: Any) -> PeptideSpec:
        return parse_spec(problem, self.max_len)

    def encode_parsed(self, specs: list[PeptideSpec]) -> Canvas:
        """Parsed specs to a canvas: motif residues fixed, each position's residue set (and
        ``[PAD]`` past the minimum length) in ``allowed``, fixed ``[PAD]`` past the maximum length,
        the label as context."""
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
            data = json.loads(text, parse_constant=no_json_constant)
            specs = data if isinstance(data, list) else [data]
        except RecursionError:
            raise InvalidProblem(f"{path}: nested too deeply to read as JSON") from None
        except json.JSONDecodeError:
            specs = []
            for k, line in enumerate(text.splitlines()):
                if line.strip() and not line.lstrip().startswith("#"):
                    try:
                        specs.append(json.loads(line, parse_constant=no_json_constant))
                    except (json.JSONDecodeError, RecursionError) as e:
                        raise InvalidProblem(f"{path}, line {k + 1}: not JSON ({e})") from None
        return [s for s in specs for _ in range(self.n)]


    # --- constraints ---------------------------------------------------------------
    def _specs(self, canvas: Canvas) -> list[PeptideSpec]:
        if not canvas.meta or not all(isinstance(m, PeptideSpec) for m in canvas.meta):
            raise InvalidProblem("a peptide canvas must carry its specs in meta (use Peptide.encode)")
        return canvas.meta

    def _views(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The canvas as the constraints read it, two [B, L, V] float one-hot views indexed by token
        id: every token but ``[MASK]`` (the windows: a stray label token is a filled position adding
        nothing), and the residues and ``[PAD]`` only (padding, runs and patterns)."""
        oh = value_onehot(tokens, 0, len(self.vocab))
        oh[..., self.vocab.mask_id] = 0.0
        return oh, oh * self._reads.to(tokens.device)

    def _constraints(self, canvas: Canvas, specs: list[PeptideSpec]) -> _Constraints:
        """The constraint objects of this batch of specs (bounds, limits and patterns per item)."""
        dev = canvas.tokens.device
        L = self.max_len
        pats = list(dict.fromkeys(p for s in specs for p in s.forbidden))  # each pattern once, in order
        members = [self._members(pat).to(dev) for pat in pats]
        active = torch.tensor([[p in s.forbidden for p in pats] for s in specs], dtype=torch.bool,
                              device=dev).view(len(specs), len(pats))
        residues = self._residues.to(dev)
        return _Constraints(
            order=TrailingPadding(self.vocab.pad_id),
            windows=self._windows.constraint(specs, canvas.allowed_values(), self.localise),
            runs=MaxRun(torch.tensor([s.max_run or L + 1 for s in specs], device=dev), counted=residues),
            patterns=ForbiddenPatterns(members, active, alphabet=residues,
                                       names=[f"forbidden motif {pattern_string(p)}" for p in pats]))

    def _members(self, pattern: tuple[frozenset[str], ...]) -> torch.Tensor:
        """[m, V] bool: the tokens each element of a residue pattern matches (kept per pattern)."""
        if pattern not in self._patterns:
            m = torch.zeros(len(pattern), len(self.vocab), dtype=torch.bool)
            for j, e in enumerate(pattern):
                m[j, [self.vocab.id(a) for a in e]] = True
            self._patterns[pattern] = m
        return self._patterns[pattern]

    def validate(self, canvas: Canvas, tokens: torch.Tensor, messages: bool = False) -> Report:
        """Exact check of ``tokens`` [B, L]: one ``check`` per constraint, their violations ORed
        (givens never implicated), then RDKit on the designs they all accept; messages and named
        checks are built from the same findings (``_messages``, ``_checks``)."""
        specs = self._specs(canvas)
        oh, seq = self._views(tokens)
        c = self._constraints(canvas, specs)
        static = canvas.allowed_values()
        filled = tokens != self.vocab.mask_id
        free = filled & ~canvas.fixed
        empty = ~filled.unsqueeze(-1)
        # residues each position may hold (motif, allowed sets, length)
        bad_dom = filled & ~static.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        order = c.order.check(seq)  # padding only at the end
        # property windows: bounds over the completions that keep padding trailing, localised to
        # the committed free residues (along the properties and their pairwise combinations)
        windows = c.windows.check(oh, within=static & (c.order.candidates(seq) | ~empty), free=free)
        runs = c.runs.check(seq, free)  # runs of one residue
        patterns = c.patterns.check(seq, free)  # forbidden patterns
        viol = (bad_dom | order.violations | windows.violations | runs.violations | patterns.violations) & ~canvas.fixed
        ok = (filled.all(-1) & ~bad_dom.any(-1) & ~order.broken & ~windows.broken & ~runs.broken
              & ~patterns.broken)
        # confirm with RDKit on the molecule: a whole-sequence check, not a rule over the one-hot
        # view, so it stays here (run only on designs every constraint above accepts)
        rd_msgs: dict[int, list[str]] = {}
        if bool(ok.any()):
            seqs = self.decode(canvas, tokens)
            for b in ok.nonzero().squeeze(-1).tolist():
                problems = specs[b].check(seqs[b])
                if problems:
                    ok[b] = False
                    rd_msgs[b] = [f"RDKit check: {p}" for p in problems]
        if not messages:
            return Report(ok=ok, violations=viol)
        found = _Findings(filled, bad_dom, order, windows, runs, patterns, rd_msgs)
        items = range(len(specs))
        return Report(ok=ok, violations=viol, messages=[self._messages(specs[b], c, tokens, found, b) for b in items],
                      checks=[self._checks(specs[b], found, b) for b in items])

    def _messages(self, spec: PeptideSpec, c: _Constraints, tokens: torch.Tensor, found: _Findings,
                  b: int) -> list[str]:
        """Why item ``b`` is not a valid design, one line per finding, constraint by constraint."""
        out = [f"position {i + 1}: {self.vocab.tokens[int(tokens[b, i])]} is not allowed there"
               for i in found.bad_dom[b].nonzero().squeeze(-1).tolist()]
        if found.order.broken[b]:
            row = tokens[b]
            pads = (row == self.vocab.pad_id).nonzero().squeeze(-1)
            res = self._residues.to(row.device)[row].nonzero().squeeze(-1)
            out.append(f"padding at position {int(pads.min()) + 1} before residue at position "
                       f"{int(res.max()) + 1}: a peptide must be contiguous")
        out += self._windows.messages(spec, found.windows, b)
        if found.runs.broken[b]:
            out.append(f"a run of {int(found.runs.length[b].max())} identical residues (max_run {spec.max_run})")
        out += [f"{c.patterns.names[p]} at position {o + 1}" for p, o in enumerate(found.patterns.first[b].tolist())
                if o >= 0]
        n_empty = int((~found.filled[b]).sum())
        if n_empty:
            out.append(f"{n_empty} positions empty")
        return out + found.rdkit.get(b, [])

    @staticmethod
    def _checks(spec: PeptideSpec, found: _Findings, b: int) -> list[Check]:
        """The named checks of item ``b``: complete, residues allowed, each window of the spec, runs,
        forbidden motifs, and RDKit's confirmation on the molecule."""
        n_empty = int((~found.filled[b]).sum())
        bad_window = (found.windows.over[b] > 0) | (found.windows.under[b] > 0)
        out = [Check("complete", not n_empty, f"({n_empty} positions empty)" if n_empty else ""),
               Check("residues allowed", not bool(found.bad_dom[b].any()) and not bool(found.order.broken[b]))]
        for p, key in enumerate(PROPERTIES):
            if key in spec.windows:
                out.append(Check(f"{key} window", not bool(bad_window[p])))
        if spec.max_run:
            out.append(Check(f"max_run {spec.max_run}", not bool(found.runs.broken[b])))
        if spec.forbidden:
            out.append(Check("no forbidden motif", not bool(found.patterns.broken[b])))
        if all(c.ok for c in out):
            out.append(Check("RDKit confirms", b not in found.rdkit))
        return out

    def domains(self, canvas: Canvas, tokens: torch.Tensor) -> torch.Tensor:
        """Allowed values narrowed by the filled positions: trailing padding, window bounds,
        runs and forbidden patterns. [B, L, V] bool (what empty positions may still take)."""
        specs = self._specs(canvas)
        oh, seq = self._views(tokens)
        c = self._constraints(canvas, specs)
        filled = (tokens != self.vocab.mask_id).unsqueeze(-1)
        dom = canvas.allowed_values() & (c.order.candidates(seq) | filled)
        if any(s.windows for s in specs):  # bounds tighten with the domain: two rounds
            dom = c.windows.candidates(oh, within=dom, rounds=2)
        if any(s.max_run is not None for s in specs):
            dom = dom & c.runs.candidates(seq)
        if c.patterns.patterns:
            dom = dom & c.patterns.candidates(seq)
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
            spec["motif"] = merge_motif(motif)
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

