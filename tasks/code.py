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
:mod:`constrained.sandbox`; a failing test implicates the whole hole.

Corpus, tokenizer and hole cutting live in :mod:`constrained.tasks.code_corpus`.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from constrained.canvas import Canvas
from constrained.errors import ConfigError, InvalidProblem
from constrained.layout import Layout
from constrained.report import Check, Report
from constrained.task import Task

from .code_checks import test_counts, token_spans, tokens_spelling, undefined_names
from .code_corpus import (
    BOF,
    EOF,
    SEP,
    Hole,
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
from .sandbox import SandboxLimits, require_sandbox, run_tests

__all__ = [
    "CodeEdit",
    "CodeInfill",
    "CodeProblem",
    "CompletedFile",
    "build_tokenizer",
    "corpus_files",
    "load_corpus",
    "load_tokenizer",
    "split_of",
]

MARKER = "<FILL>"
#: stand-ins for an unknown hole when checking that the file parses outside it
FILLERS = ("pass", "None", "x", "", "x)", "x]", "x}", "x:", "x, y", "+ x", "== x", "x = 1")
#: [PAD] positions after the hole's end implicated by an error at or after its last line (room to grow)
GROW_TOKENS = 1
_SPAN = re.compile(r"^\s*(\d+):(\d+)\s*-\s*(\d+):(\d+)\s*$")
_LINES = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


@dataclass
class CodeProblem:
    """A source with one hole: ``prefix + hole + suffix``.

    ``original`` is what the hole held before (code-edit, or the known answer of a
    benchmark hole); ``tests`` are this problem's own tests (else the task's).
    """

    prefix: str
    suffix: str
    original: str | None = None
    name: str = "<input>"
    tests: str | None = None

    @property
    def first_line(self) -> int:
        """1-based line where the hole starts."""
        return self.prefix.count("\n") + 1

    def with_hole(self, text: str) -> str:
        """The file with ``text`` in the hole; in a CRLF file the hole's line ends become CRLF too."""
        if "\n" in text and self.crlf:
            text = re.sub(r"(?<!\r)\n", "\r\n", text)
        return self.prefix + text + self.suffix

    @property
    def crlf(self) -> bool:
        """Whether the text around the hole ends its lines with CRLF (and never with a bare LF)."""
        around = self.prefix + self.suffix
        return "\r\n" in around and re.search(r"(?<!\r)\n", around) is None


class CompletedFile(str):
    """The completed source (a ``str``), carrying the ``hole`` text and the ``problem``."""

    hole: str
    problem: CodeProblem

    def __new__(cls, text: str, hole: str, problem: CodeProblem) -> CompletedFile:
        obj = super().__new__(cls, text)
        obj.hole = hole
        obj.problem = problem
        return obj


@dataclass
class _Item:
    """What the validator keeps per canvas row: the problem, its tests and a cache of
    verdicts by hole content (a canvas is validated after every pass)."""

    problem: CodeProblem
    tests: str | None
    module: str
    cache: dict[tuple[int, ...], tuple[bool, list[int], list[str], list[Check]]] = field(default_factory=dict)


def compile_error(source: str, name: str = "<file>") -> SyntaxError | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source.removeprefix("\ufeff"), name, "exec", dont_inherit=True)  # a BOM is legal
        except SyntaxError as e:
            return e
        except (ValueError, MemoryError, RecursionError) as e:  # null bytes, absurd nesting
            err = SyntaxError(str(e))
            err.lineno = None
            return err
    return None


def _describe(e: SyntaxError) -> str:
    return f"line {e.lineno}: {e.msg}" if e.lineno else str(e.msg)


def parse_lines(value: Any, n_lines: int) -> tuple[int, int]:
    """``"10-14"``, ``"10"``, ``10`` or ``(10, 14)`` -> 1-based inclusive (first, last)."""
    if isinstance(value, int):
        a = b = value
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        a, b = int(value[0]), int(value[1])
    else:
        m = _LINES.match(str(value))
        if not m:
            raise InvalidProblem(f"lines {value!r}: use FIRST-LAST, e.g. '10-14'")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
    if not 1 <= a <= b <= n_lines:
        raise InvalidProblem(f"lines {value!r} are outside the file's lines 1-{n_lines}")
    return a, b


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def problem_from_lines(source: str, lines: Any, name: str = "<input>") -> CodeProblem:
    """The hole is lines FIRST..LAST from the first non-blank character of FIRST to the end of LAST."""
    starts = _line_starts(source)
    n = len(starts) - (1 if source.endswith("\n") else 0)
    a, b = parse_lines(lines, max(n, 1))
    s = starts[a - 1]
    e = starts[b] - 1 if b < len(starts) else len(source)
    seg = source[s:e]
    s += len(seg) - len(seg.lstrip(" \t"))
    e = max(s, s + len(source[s:e].rstrip()))
    return CodeProblem(source[:s], source[e:], original=source[s:e], name=name)


def problem_from_span(source: str, span: Any, name: str = "<input>") -> CodeProblem:
    """``"L1:C1-L2:C2"`` (1-based lines and columns, end column exclusive)."""
    m = _SPAN.match(str(span))
    if not m:
        raise InvalidProblem(f"span {span!r}: use LINE:COL-LINE:COL, e.g. '3:5-3:20'")
    l1, c1, l2, c2 = map(int, m.groups())
    starts = _line_starts(source)
    if not (1 <= l1 <= l2 <= len(starts)):
        raise InvalidProblem(f"span {span!r}: lines outside the file's lines 1-{len(starts)}")

    def offset(line: int, col: int) -> int:
        end = starts[line] - 1 if line < len(starts) else len(source)
        pos = starts[line - 1] + col - 1
        if not starts[line - 1] <= pos <= end or col < 1:
            raise InvalidProblem(f"span {span!r}: column {col} is outside line {line} "
                                 f"({end - starts[line - 1]} characters)")
        return pos

    s, e = offset(l1, c1), offset(l2, c2)
    if e < s:
        raise InvalidProblem(f"span {span!r} ends before it starts")
    return CodeProblem(source[:s], source[e:], original=source[s:e], name=name)


def problem_from_marker(source: str, marker: str = MARKER, name: str = "<input>") -> CodeProblem:
    n = source.count(marker)
    if n != 1:
        where = [i + 1 for i, ln in enumerate(source.splitlines()) if marker in ln]
        raise InvalidProblem(f"{name}: expected exactly one {marker} marker, found {n}"
                             + (f" (lines {where})" if where else "") +
                             "; or give the hole as lines / a span (code-edit --lines 10-14)")
    i = source.index(marker)
    return CodeProblem(source[:i], source[i + len(marker):], name=name)


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
    #: defer_token 0: a [PAD] is committed only where the hole's content has reached it (else the
    #: confident [PAD]s far to the right are committed first and the hole collapses to empty);
    #: window 4: the hole is written left to right, 4 open positions at a time; length_search: each
    #: restart holds the hole to the next likeliest length; patience 4 and 64 passes leave room for
    #: restarts (chosen on a development set of held-out holes, seeds 777 / 778, not the benchmark's)
    solver_defaults: dict[str, Any] = {"max_passes": 64, "floor": True, "steps": 10, "defer_token": 0,
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
        self.tests = _read_tests(tests) if tests not in (None, False) else None
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
                p.tests = _read_tests(problem["tests"])
                require_sandbox()
        elif isinstance(problem, str):
            p = self._from_source(problem, "<input>", None, None)
        else:
            raise InvalidProblem(f"a code problem is a source string, a dict or a CodeProblem, "
                                 f"got {type(problem).__name__}")
        self._check_outside(p)
        return p

    def _from_source(self, source: str, name: str, lines: Any, span: Any) -> CodeProblem:
        lines = self.lines if lines is None and span is None else lines
        span = self.span if span is None and lines is None else span
        if lines is not None and span is not None:
            raise InvalidProblem("give the hole as lines or as a span, not both")
        if "\x00" in source:
            raise InvalidProblem(f"{name}: the source contains a null byte")
        _check_text(source, name)
        if lines is not None:
            return problem_from_lines(source, lines, name)
        if span is not None:
            return problem_from_span(source, span, name)
        return problem_from_marker(source, self.marker, name)

    def _check_outside(self, p: CodeProblem) -> None:
        """InvalidProblem naming the line when the file cannot parse whatever the hole holds."""
        candidates = ([p.original] if p.original is not None else []) + list(FILLERS)
        errors = []
        for fill in candidates:
            e = compile_error(p.with_hole(fill))
            if e is None:
                return
            errors.append(e)
        first, last = p.first_line, p.first_line + (p.original or "").count("\n")
        outside = [e for e in errors if e.lineno is not None and not first <= e.lineno <= last]
        if not outside:
            return
        common = Counter(e.lineno for e in outside).most_common(1)[0]
        if 3 * common[1] >= len(errors):  # a third of the stand-ins fail at one line outside the hole
            e = next(e for e in outside if e.lineno == common[0])
            raise InvalidProblem(f"{p.name}: the file does not parse outside the hole: {_describe(e)}"
                                 + (f": {e.text.strip()!r}" if e.text else ""))

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

    def encode(self, problems: Sequence[Any]) -> Canvas:
        if isinstance(problems, (str, bytes, dict, CodeProblem)):
            raise InvalidProblem("encode takes a list of problems; wrap a single problem in a list")
        items, ctx = [], []
        for k, raw in enumerate(problems):
            try:
                p = self.parse(raw)
            except InvalidProblem as e:
                raise InvalidProblem(f"problem {k}: {e}") if len(problems) > 1 else e from None
            if p.original is not None and len(self.encode_hole(p.original)) > self.hole_tokens and self.lines:
                n = len(self.encode_hole(p.original))
                raise InvalidProblem(f"{p.name}: the selected span holds {n} tokens, more than the hole's "
                                     f"{self.hole_tokens}; select fewer lines or raise hole_tokens")
            items.append(_Item(p, p.tests or self.tests, _module_name(p.name)))
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
    def domains(self, canvas: Canvas, tokens: torch.Tensor) -> torch.Tensor:
        """[B, L, V] candidates under "[PAD] only trails the hole": after a filled [PAD] only
        [PAD]; before a filled code token anything but [PAD]; no [PAD] first unless ``allow_empty``.
        ``[MASK]`` marks an empty position."""
        filled = tokens != self.vocab.mask_id  # [B, L]
        pad = filled & (tokens == self.vocab.pad_id)
        code = filled & ~pad
        pad_before = (pad.long().cumsum(-1) - pad.long()) > 0  # a [PAD] at some j < i
        code_after = (code.long().flip(-1).cumsum(-1).flip(-1) - code.long()) > 0  # code at some j > i
        V = len(self.vocab)
        only_pad = torch.zeros(V, dtype=torch.bool, device=tokens.device)
        only_pad[self.vocab.pad_id] = True
        dom = canvas.domain().to(tokens.device)  # [B, L, V]
        if not self.allow_empty:
            dom = dom.clone()
            dom[:, 0, self.vocab.pad_id] = False
        dom = torch.where(pad_before.unsqueeze(-1), dom & only_pad, dom)
        return torch.where(code_after.unsqueeze(-1), dom & ~only_pad, dom)

    def validate(self, canvas: Canvas, tokens: torch.Tensor, messages: bool = False) -> Report:
        B, L = tokens.shape
        ok = torch.zeros(B, dtype=torch.bool)
        viol = torch.zeros(B, L, dtype=torch.bool)
        msgs: list[list[str]] = []
        checks: list[list[Check]] = []
        mask_id = self.vocab.mask_id
        for b, row in enumerate(tokens.tolist()):
            item: _Item = canvas.meta[b]
            bad, why = _pad_order(row, mask_id)
            if not bad and row[0] == 0 and not self.allow_empty:
                bad, why = [0], ["the hole is empty (allow_empty=False)"]
            good, done = False, [Check("hole well-formed", False, f"({'; '.join(why)})")]
            if bad:
                viol[b, bad] = True
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
            return False, where, [f"SyntaxError at {_describe(err)}"], [Check("compiles", False, f"({_describe(err)})")]
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


def _pad_order(row: list[int], mask_id: int) -> tuple[list[int], list[str]]:
    """Positions breaking "[PAD] only trails the hole": from the first [PAD] to the last
    filled non-[PAD] token after it."""
    if 0 not in row:
        return [], []
    first = row.index(0)
    after = [i for i in range(first + 1, len(row)) if row[i] not in (0, mask_id)]
    if not after:
        return [], []
    return list(range(first, after[-1] + 1)), [f"hole tokens after the end of the hole (position {first})"]


def _module_name(name: str) -> str:
    stem = Path(name).stem if name and not name.startswith("<") else "solution"
    return stem if stem.isidentifier() and stem not in ("test", "conftest") else "solution"


def _check_text(text: str, name: str) -> None:
    """InvalidProblem when ``text`` cannot be written as UTF-8 (a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        line = text.count("\n", 0, e.start) + 1
        raise InvalidProblem(f"{name}: line {line} holds a lone surrogate {text[e.start]!r}, "
                             f"which is not valid Unicode text") from None


def read_source(path: Path, error: type[Exception], what: str = "") -> str:
    """The text of ``path`` exactly as written (``newline=""``: CRLF stays CRLF; a leading BOM stays
    in the text and so in the output). Not UTF-8 or unreadable: ``error`` naming the file."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise error(f"{what}{path} is not UTF-8 text: {e}") from None
    except OSError as e:
        raise error(f"cannot read {what}{path}: {e.strerror or e}") from None


def _read_tests(tests: str) -> str:
    """``tests`` is a path to a test file or the test code itself."""
    if not isinstance(tests, str) or not tests.strip():
        raise ConfigError(f"tests must be a file path or test code, got {tests!r}")
    looks_like_path = "\n" not in tests and len(tests) < 4096 and "\x00" not in tests
    try:
        is_file = looks_like_path and (tests.endswith(".py") or Path(tests).exists())
    except (OSError, ValueError):  # a name too long for the file system: test code
        is_file = False
    if is_file:
        tests = read_source(Path(tests), ConfigError, "tests file ")
    if "\x00" in tests:
        raise ConfigError("the tests contain a null byte")
    try:
        tests.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("the tests hold a lone surrogate, which is not valid Unicode text") from None
    return tests


def hole_of(problem: CodeProblem) -> Hole:
    """Where a problem's hole sits in its original file (needs ``original``)."""
    s = len(problem.prefix)
    return Hole(s, s + len(problem.original or ""), "given")
