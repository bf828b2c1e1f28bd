"""Code infilling and in-line editing for Python, checked by the parser and by tests.

``code-infill``: a Python source with a hole (a ``<FILL>`` marker, or a line / column
span); the canvas is the hole — a fixed budget of ``hole_tokens`` BPE tokens whose
unused tail the model fills with ``[PAD]`` (so the hole has a variable length) — and
the code around it reaches the model as context: up to ``prefix_tokens`` before the
hole, a ``[SEP]`` where the hole is, up to ``suffix_tokens`` after it (``[BOF]`` /
``[EOF]`` where the file starts or ends inside the window).

``code-edit``: the same on an existing file: a selected span (``lines="10-14"`` or
``span="3:5-3:20"``) is sent back to noise and denoised again under the same
validators; everything else stays as it is.

Validators, reported as named checks on the Result (``compiles``, ``names resolve``,
``tests N/N``): the completed file must compile (``compile(..., "exec")``); a
``SyntaxError`` implicates the hole tokens on and around the reported line (the
solver re-noises exactly those); the names the hole uses must resolve (pyflakes, see
:mod:`constrained.tasks.code_checks`): an undefined name implicates the tokens that
spell it; ``[PAD]`` may only trail the hole. Optional user tests (a pytest file, or
``assert`` lines) run against the completed file in the sandbox of
:mod:`constrained.tasks.sandbox`; a failing test implicates the whole hole.

Problems and how a hole is given (marker, lines, span) live in :mod:`constrained.tasks.code_problem`;
corpus, tokenizer and hole cutting in :mod:`constrained.tasks.code_corpus`. The "[PAD] only trails the
hole" rule is the constraint library's :class:`~constrained.constraints.TrailingPadding`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from constrained.canvas import Canvas
from constrained.constraints import TrailingPadding
from constrained.errors import ConfigError, InvalidProblem
from constrained.layout import Layout
from constrained.report import Check, Report
from constrained.task import Task

from .code_checks import test_counts, token_spans, tokens_spelling, undefined_names
from .code_corpus import (
    BOF,
    EOF,
    SEP,
    SourceFile,
    build_tokenizer,
    code_vocab,
    corpus_files,
    cut_hole,
    iter_holes,
    load_corpus,
    load_tokenizer,
    split_of,
    token_bytes,
)
from .code_problem import (
    MARKER,
    CodeProblem,
    CompletedFile,
    check_outside,
    check_text,
    compile_error,
    describe_error,
    module_name,
    problem_from_lines,
    problem_from_marker,
    problem_from_span,
    read_source,
    read_tests,
)
from .sandbox import SandboxLimits, require_sandbox, run_tests

__all__ = [
    "CodeEdit",
    "CodeInfill",
    "CodeProblem",
    "CompletedFile",
    "build_tokenizer",
    "compile_error",
    "corpus_files",
    "load_corpus",
    "load_tokenizer",
    "problem_from_lines",
    "problem_from_span",
    "split_of",
]

#: [PAD] positions after the hole's end implicated by an error at or after its last line (room to grow)
GROW_TOKENS = 1


@dataclass
class _Item:
    """What the validator keeps per canvas row: the problem, its tests and a cache of
    verdicts by hole content (a canvas is validated after every pass)."""

    problem: CodeProblem
    tests: str | None
    module: str
    cache: dict[tuple[int, ...], tuple[bool, list[int], list[str], list[Check]]] = field(default_factory=dict)


class CodeInfill(Task):
    """Python infilling: fill a <FILL> hole so the file compiles, its names resolve and --tests pass.

    Input:
        a Python file holding one <FILL> marker (or a hole given with --lines / --span), or the
        source text itself; a JSON-like dict {"source": ..., "lines": ..., "span": ...} from Python
    Example:
        constrained solve code-infill calc.py --tests test_calc.py
    """

    name = "code-infill"
    default_model = "code"
    #: end_token 0: a [PAD] is committed only where the hole's content has reached it (else the
    #: confident [PAD]s far to the right are committed first and the hole collapses to empty);
    #: window 4: the hole is written left to right, 4 open positions at a time; length_search: each
    #: restart holds the hole to the next likeliest length; patience 4 and 64 passes leave room for
    #: restarts (chosen on a development set of held-out holes, seeds 777 / 778, not the benchmark's)
    solver_defaults: dict[str, Any] = {"max_passes": 64, "floor": True, "steps": 10, "end_token": 0,
                                       "window": 4, "length_search": True, "patience": 4}

    def __init__(self, hole_tokens: int = 64, prefix_tokens: int = 128, suffix_tokens: int = 48,
                 tests: str | None = None, marker: str = MARKER, diff: bool = False,
                 tokenizer: str | None = None, test_timeout: float = 10.0, memory_mb: int = 1024,
                 lines: Any = None, span: Any = None, allow_empty: bool = False) -> None:
        """Args:
            hole_tokens: the hole's budget in BPE tokens (its unused tail is [PAD])
            prefix_tokens: tokens of code before the hole the model reads
            suffix_tokens: tokens of code after the hole the model reads
            tests: a test file or test code (pytest functions, or assert lines run in the module's
                namespace), run in the sandbox against every complete fill
            marker: the text that marks the hole
            diff: print a unified diff against the input instead of the whole file
            tokenizer: a tokenizer.json (default: the shipped model's)
            test_timeout: wall-clock seconds per test run
            memory_mb: memory limit of a test run
            lines: the hole as lines FIRST-LAST, e.g. 10-14 (instead of a marker)
            span: the hole as LINE:COL-LINE:COL, e.g. 3:5-3:20, end column exclusive
            allow_empty: accept an empty hole as a fill
        """
        for key, v, lo in (("hole_tokens", hole_tokens, 1), ("prefix_tokens", prefix_tokens, 0),
                           ("suffix_tokens", suffix_tokens, 0)):
            if not isinstance(v, int) or v < lo:
                raise ConfigError(f"{key} must be an integer >= {lo}, got {v!r}")
        self.tok = load_tokenizer(tokenizer)
        self.vocab = code_vocab(self.tok)
        self.hole_tokens, self.prefix_tokens, self.suffix_tokens = hole_tokens, prefix_tokens, suffix_tokens
        self.layout = Layout(length=hole_tokens)
        self.marker, self.diff = marker, bool(diff)
        self.lines, self.span = lines, span
        self.allow_empty = bool(allow_empty)  # False: the hole holds at least one code token
        self.tests = read_tests(tests) if tests not in (None, False) else None
        if self.tests:
            require_sandbox()  # refuse before any model loads where no OS sandbox can run the tests
        self.limits = SandboxLimits(wall_seconds=float(test_timeout), cpu_seconds=max(1, int(test_timeout)),
                                    memory_mb=int(memory_mb))
        self._bytes = token_bytes(self.vocab)
        self._sep, self._bof, self._eof = (self.vocab.id(t) for t in (SEP, BOF, EOF))
        allowed = self.vocab.content_mask(include_pad=True)
        self._allowed = allowed  # [V]: content tokens and [PAD]
        self._train: list[SourceFile] | None = None
        self._heldout: list[SourceFile] | None = None

    @property
    def data_card(self) -> str:
        return ("real Python source on the machine: the standard library (without its test packages) "
                "and installed packages (without tests folders), files of 300 B-200 kB; whole modules held "
                "out for evaluation by the SHA-1 of their path (10 %); holes cut at random (one line, 2-3 "
                "lines, or a span inside a line); byte-level BPE tokenizer (tokenizers, 1024 ids) trained on "
                "the training split (`constrained/models/code/tokenizer.json`); see tasks/code_corpus.py. "
                "Nothing downloaded")

    # --- problems -------------------------------------------------------------------
    def parse(self, problem: Any) -> CodeProblem:
        """A CodeProblem from a source with a marker, a dict (``source`` plus ``lines`` or
        ``span``, optional ``name`` / ``tests``), or a CodeProblem."""
        if isinstance(problem, CodeProblem):
            p = problem
        elif isinstance(problem, dict):
            if not isinstance(problem.get("source"), str):
                raise InvalidProblem("a code problem dict needs a 'source' string")
            unknown = set(problem) - {"source", "lines", "span", "name", "tests"}
            if unknown:
                raise InvalidProblem(f"unknown code problem keys {sorted(unknown)}")
            name = str(problem.get("name", "<input>"))
            p = self._from_source(problem["source"], name, problem.get("lines"), problem.get("span"))
            if problem.get("tests"):
                p.tests = read_tests(problem["tests"])
                require_sandbox()
        elif isinstance(problem, str):
            p = self._from_source(problem, "<input>", None, None)
        else:
            raise InvalidProblem(f"a code problem is a source string, a dict or a CodeProblem, "
                                 f"got {type(problem).__name__}")
        check_outside(p)
        return p

    def _from_source(self, source: str, name: str, lines: Any, span: Any) -> CodeProblem:
        lines = self.lines if lines is None and span is None else lines
        span = self.span if span is None and lines is None else span
        if lines is not None and span is not None:
            raise InvalidProblem("give the hole as lines or as a span, not both")
        if "\x00" in source:
            raise InvalidProblem(f"{name}: the source contains a null byte")
        check_text(source, name)
        if lines is not None:
            return problem_from_lines(source, lines, name)
        if span is not None:
            return problem_from_span(source, span, name)
        return problem_from_marker(source, self.marker, name)

    def group_key(self, problem: Any) -> Any:
        return None

    def _context(self, prefix: str, suffix: str) -> list[int]:
        """[prefix_tokens + suffix_tokens + 3] ids: left-padded prefix window ([BOF] if the file
        starts inside it), [SEP], suffix window ([EOF] if the file ends inside it), right-padded."""
        P, S = self.prefix_tokens, self.suffix_tokens
        # the model reads LF line ends and no BOM (as in its corpus); the output keeps the file's own
        prefix, suffix = prefix.removeprefix("\ufeff").replace("\r\n", "\n"), suffix.replace("\r\n", "\n")
        pre_text = prefix[-P * 5:] if P else ""
        pre = self.tok.encode(pre_text).ids[-P:] if pre_text else []
        if len(pre_text) == len(prefix) and len(pre) < P + 1:
            pre = [self._bof, *pre]
        pre = [0] * (P + 1 - len(pre)) + pre
        suf_text = suffix[: S * 5] if S else ""
        suf = self.tok.encode(suf_text).ids[:S] if suf_text else []
        if len(suf_text) == len(suffix) and len(suf) < S + 1:
            suf = [*suf, self._eof]
        suf = suf + [0] * (S + 1 - len(suf))
        return [*pre, self._sep, *suf]

    def encode_hole(self, text: str) -> list[int]:
        return self.tok.encode(text).ids if text else []

    def encode_parsed(self, parsed: list[CodeProblem]) -> Canvas:
        """Parsed problems to a canvas of ``hole_tokens`` [MASK]s each, with the code around the hole as
        context (``_context``). Raises InvalidProblem when a hole given as lines holds more tokens
        than the hole's budget."""
        items, ctx = [], []
        for p in parsed:
            if p.original is not None and len(self.encode_hole(p.original)) > self.hole_tokens and self.lines:
                n = len(self.encode_hole(p.original))
                raise InvalidProblem(f"{p.name}: the selected span holds {n} tokens, more than the hole's "
                                     f"{self.hole_tokens}; select fewer lines or raise hole_tokens")
            items.append(_Item(p, p.tests or self.tests, module_name(p.name)))
            ctx.append(self._context(p.prefix, p.suffix))
        B, L = len(items), self.hole_tokens
        tokens = torch.full((B, L), self.vocab.mask_id, dtype=torch.long)
        fixed = torch.zeros(B, L, dtype=torch.bool)
        allowed = self._allowed.expand(B, L, -1).clone()
        context = torch.tensor(ctx, dtype=torch.long).view(B, -1)
        return Canvas(tokens=tokens, fixed=fixed, layout=self.layout, vocab=self.vocab, allowed=allowed,
                      context=context, meta=items)

    def hole_text(self, ids: Sequence[int]) -> str:
        """Hole tokens (up to the first [PAD]; [MASK] skipped) -> text."""
        out = []
        for i in ids:
            if i == 0:
                break
            out.append(self._bytes[i])
        return b"".join(out).decode("utf-8", errors="replace")

    def decode(self, canvas: Canvas, tokens: torch.Tensor) -> list[CompletedFile]:
        out = []
        for item, row in zip(canvas.meta, tokens.tolist()):
            hole = self.hole_text(row)
            full = item.problem.with_hole(hole)
            hole = full[len(item.problem.prefix): len(full) - len(item.problem.suffix)]
            out.append(CompletedFile(full, hole, item.problem))
        return out

    def format_solution(self, solution: Any) -> str:
        if not self.diff or not isinstance(solution, CompletedFile):
            return str(solution)
        p = solution.problem
        before = p.with_hole(p.original if p.original is not None else self.marker)
        name = p.name
        before_lines, after = before.splitlines(keepends=True), str(solution).splitlines(keepends=True)
        return "".join(difflib.unified_diff(before_lines, after, fromfile=name, tofile=name))

    def read_problems(self, path: Path) -> list[Any]:
        path = Path(path)
        return [{"source": read_source(path, InvalidProblem), "name": str(path)}]

    # --- constraints ---------------------------------------------------------------
    def _padding_view(self, tokens: torch.Tensor) -> tuple[TrailingPadding, torch.Tensor]:
        """The "[PAD] only trails the hole" rule and the hole as it reads it: ``onehot`` [B, L, 2] float,
        value 0 a [PAD] and value 1 any code token, zeros at a [MASK]. The rule tells code tokens apart
        only from [PAD], so two columns stand for the vocabulary's ~1024 (a [B, L, V] one-hot would be
        V/2 times the memory and time for the same answer)."""
        pad = tokens == self.vocab.pad_id
        code = (tokens != self.vocab.mask_id) & ~pad
        return TrailingPadding(pad=0, allow_empty=self.allow_empty), torch.stack((pad, code), -1).float()

    def domains(self, canvas: Canvas, tokens: torch.Tensor) -> torch.Tensor:
        """[B, L, V] candidates under "[PAD] only trails the hole" (:class:`TrailingPadding`): after a
        filled [PAD] only [PAD]; before a filled code token anything but [PAD]; no [PAD] first unless
        ``allow_empty``. ``[MASK]`` marks an empty position."""
        rule, onehot = self._padding_view(tokens)
        cand = rule.candidates(onehot)  # [B, L, 2]: [PAD] allowed, code allowed
        allowed, pad = canvas.allowed_values().to(tokens.device), self.vocab.pad_id
        dom = allowed & cand[..., 1:]  # [B, L, V]: code tokens where code may go (one pass over V)
        dom[..., pad] = allowed[..., pad] & cand[..., 0]
        return dom

    def validate(self, canvas: Canvas, tokens: torch.Tensor, messages: bool = False) -> Report:
        ok = torch.zeros(tokens.shape[0], dtype=torch.bool)
        msgs: list[list[str]] = []
        checks: list[list[Check]] = []
        mask_id, pad_id = self.vocab.mask_id, self.vocab.pad_id
        rule, onehot = self._padding_view(tokens)
        viol = rule.violations(onehot).cpu()  # [B, L]: a [PAD] before code, or an empty hole
        misplaced = viol.any(-1).tolist()
        code_late = (viol & (onehot[..., 1] > 0.5).cpu()).any(-1).tolist()  # code after a [PAD]
        for b, row in enumerate(tokens.tolist()):
            item: _Item = canvas.meta[b]
            good = False
            if misplaced[b]:
                why = ([f"hole tokens after the end of the hole (position {row.index(pad_id)})"] if code_late[b]
                       else ["the hole is empty (allow_empty=False)"])
                done = [Check("hole well-formed", False, f"({why[0]})")]
            elif mask_id not in row:
                key = tuple(row[: row.index(0)] if 0 in row else row)
                if key not in item.cache:
                    item.cache[key] = self._check(item, row)
                good, where, why, done = item.cache[key]
                if where:
                    viol[b, where] = True
            else:
                why = [f"{row.count(mask_id)} hole tokens not filled yet"]
                done = [Check("complete", False, f"({why[0]})")]
            ok[b] = good
            if messages:
                msgs.append(list(why))
                checks.append(list(done))
        return Report(ok=ok.to(tokens.device), violations=viol.to(tokens.device), messages=msgs, checks=checks)

    def _check(self, item: _Item, row: list[int]) -> tuple[bool, list[int], list[str], list[Check]]:
        """(ok, implicated positions, messages, checks) of a complete hole: it compiles, the names
        it uses resolve, the tests pass; the first check that fails ends the list."""
        n = row.index(0) if 0 in row else len(row)
        p = item.problem
        text = self.hole_text(row)
        src = p.with_hole(text)
        err = compile_error(src, p.name)
        if err is not None:
            where = self._localise(p, row[:n], err)
            said = describe_error(err)
            return False, where, [f"SyntaxError at {said}"], [Check("compiles", False, f"({said})")]
        checks = [Check("compiles", True)]
        spans = self._spans(p, row[:n])
        end = (spans[-1][2], spans[-1][3]) if spans else (p.first_line, self._col0(p))
        missing = undefined_names(src, (p.first_line, self._col0(p)), end, p.name)
        if missing:
            names = ", ".join(dict.fromkeys(repr(m.name) for m in missing))
            where = tokens_spelling(spans, missing) or list(range(n))
            return (False, where, [f"undefined name {m.name!r} at line {m.line}" for m in missing],
                    [*checks, Check("names resolve", False, f"(undefined: {names})")])
        checks.append(Check("names resolve", True))
        if item.tests:
            res = run_tests(src, item.tests, module=item.module, limits=self.limits)
            counts = test_counts(res.stdout)
            detail = f"{counts[0]}/{counts[1]}" if counts else ("passed" if res.ok else "failed")
            if not res.ok:
                where = list(range(n)) + ([n] if n < len(row) else [])
                if counts and counts[0] < counts[1]:
                    detail += " (stopped at the first failure)"
                return False, where, [f"tests failed: {res.reason}"], [*checks, Check("tests", False, detail)]
            checks.append(Check("tests", True, detail))
        return True, [], [], checks

    @staticmethod
    def _col0(p: CodeProblem) -> int:
        """Column (0-based) where the hole starts."""
        return len(p.prefix) - (p.prefix.rfind("\n") + 1)

    def _spans(self, p: CodeProblem, ids: list[int]) -> list[tuple[int, int, int, int]]:
        texts = [self._bytes[i].decode("utf-8", errors="replace") for i in ids]
        return token_spans(texts, p.first_line, self._col0(p))

    def _localise(self, p: CodeProblem, ids: list[int], err: SyntaxError) -> list[int]:
        """Hole positions from the reported line and column to the end of that line (the code before
        the error point on its line stays; the whole line when the error is reported at its start,
        plus the line before, the cause being often there), and the first [PAD] when the error is at
        or after the hole's end, so the hole may grow."""
        n = len(ids)
        grow = list(range(n, min(n + GROW_TOKENS, self.hole_tokens)))
        if not ids:
            return grow or [0]
        first, col0 = p.first_line, self._col0(p)
        spans = self._spans(p, ids)  # per token: (first line, start column, last line, end column)
        last = spans[-1][2]
        e = err.lineno
        if e is None or e < first:
            return list(range(n)) + grow
        if e > last:
            return [i for i, (a, _, b, _) in enumerate(spans) if b >= last] + grow
        text, off = err.text or "", (err.offset or 1) - 1  # 0-based column of the error
        at_start = off <= len(text) - len(text.lstrip())
        if at_start or (e == first and off < col0):  # the whole line (and the line before)
            near = {e, e - 1} if at_start and e > first else {e}
            out = [i for i, (a, _, b, _) in enumerate(spans) if any(a <= x <= b for x in near)]
        else:  # from the token holding the error column to the end of the line
            out = [i for i, (a, c, b, d) in enumerate(spans) if a <= e <= b and (b > e or d > off)]
        if e == last:
            out += grow
        return out or list(range(n)) + grow

    # --- data -------------------------------------------------------------------------
    def _train_files(self) -> list[SourceFile]:
        if self._train is None:
            self._train = load_corpus("train")
        return self._train

    def _heldout_files(self, max_chars: int = 6_000_000) -> list[SourceFile]:
        if self._heldout is None:
            self._heldout = load_corpus("heldout", max_chars=max_chars, require_parse=True)
        return self._heldout

    def example_from(self, prefix: str, hole: str, suffix: str) -> dict[str, torch.Tensor] | None:
        """A training item for one hole, or None if the hole needs more than ``hole_tokens``."""
        ids = self.encode_hole(hole)
        if len(ids) > self.hole_tokens or any(i < 2 or i >= self._sep for i in ids):
            return None
        tokens = torch.zeros(self.hole_tokens, dtype=torch.long)
        tokens[: len(ids)] = torch.tensor(ids, dtype=torch.long)
        return {"tokens": tokens, "fixed": torch.zeros(self.hole_tokens, dtype=torch.bool),
                "context": torch.tensor(self._context(prefix, suffix), dtype=torch.long)}

    def training_example(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A random hole of a random training module: one line (45 %), 2-3 lines (30 %) or a
        span inside a line (25 %); the hole's tokens then [PAD] to the budget."""
        files = self._train_files()
        while True:
            f = files[int(rng.integers(len(files)))]
            u = rng.random()
            kind = "line" if u < 0.45 else "multiline" if u < 0.75 else "span"
            h = cut_hole(f.text, rng, kind, max_lines=3)
            if h is None:
                continue
            ex = self.example_from(*h.parts(f.text))
            if ex is not None:
                return ex

    def generate(self, n: int, seed: int = 0, kind: str = "line", max_lines: int = 3,
                 progress: bool = False) -> list[tuple[CodeProblem, str]]:
        """``n`` holes cut from held-out modules: (problem, the hole's original text).

        Holes that need more than ``hole_tokens`` tokens, or that contain the marker, are skipped."""
        out: list[tuple[CodeProblem, str]] = []
        seen: set[tuple[str, int, int]] = set()
        for f, h in iter_holes(self._heldout_files(), kind, seed=seed, max_lines=max_lines):  # type: ignore[arg-type]
            if len(out) >= n:
                break
            pre, hole, suf = h.parts(f.text)
            too_long = len(self.encode_hole(hole)) > self.hole_tokens
            if (f.key, h.start, h.end) in seen or self.marker in hole or too_long:
                continue
            seen.add((f.key, h.start, h.end))
            out.append((CodeProblem(pre, suf, original=hole, name=f.key), hole))
        return out


class CodeEdit(CodeInfill):
    """Python in-line editing: re-noise lines (--lines 10-14) or a span and denoise them again.

    Input:
        a Python file (or its text) and the part to rewrite: --lines FIRST-LAST or
        --span LINE:COL-LINE:COL (or a <FILL> marker)
    Example:
        constrained solve code-edit calc.py --lines 3-4 --diff
    """

    name = "code-edit"

    def _from_source(self, source: str, name: str, lines: Any, span: Any) -> CodeProblem:
        given = (lines, span, self.lines, self.span)
        if all(v is None for v in given) and self.marker not in source:
            raise InvalidProblem(f"{name}: code-edit needs the lines to rewrite (--lines 10-14) "
                                 "or a span (--span 3:5-3:20)")
        return super()._from_source(source, name, lines, span)
