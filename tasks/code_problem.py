"""A code problem: a Python source with one hole, and how it is read.

:class:`CodeProblem` (``prefix + hole + suffix``) and :class:`CompletedFile` (a filled source); the
three ways a hole is given (a ``<FILL>`` marker, lines ``FIRST-LAST``, a span
``LINE:COL-LINE:COL``: :func:`problem_from_marker`, :func:`problem_from_lines`,
:func:`problem_from_span`); the checks a source passes before it is encoded (valid Unicode, parses
outside the hole: :func:`check_outside`); and reading sources and test files exactly as written.
Every refusal is an :class:`~constrained.errors.InvalidProblem` (a problem) or a
:class:`~constrained.errors.ConfigError` (the tests option) naming what is wrong. The task
(:mod:`constrained.tasks.code`) encodes what this module reads.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from constrained.errors import ConfigError, InvalidProblem

MARKER = "<FILL>"
#: stand-ins for an unknown hole when checking that the file parses outside it
FILLERS = ("pass", "None", "x", "", "x)", "x]", "x}", "x:", "x, y", "+ x", "== x", "x = 1")
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


def compile_error(source: str, name: str = "<file>") -> SyntaxError | None:
    """The SyntaxError of compiling ``source`` as a module, or None when it compiles (a null byte or
    absurd nesting is reported as a SyntaxError without a line)."""
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


def describe_error(e: SyntaxError) -> str:
    """``"line N: message"`` (the message alone when the error has no line)."""
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


def check_outside(p: CodeProblem) -> None:
    """InvalidProblem naming the line when the file cannot parse whatever the hole holds (its
    ``original`` or any of the :data:`FILLERS` stand-ins)."""
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
        raise InvalidProblem(f"{p.name}: the file does not parse outside the hole: {describe_error(e)}"
                             + (f": {e.text.strip()!r}" if e.text else ""))


def module_name(name: str) -> str:
    """The module name a problem's tests import it as: its file's stem, else ``solution``."""
    stem = Path(name).stem if name and not name.startswith("<") else "solution"
    return stem if stem.isidentifier() and stem not in ("test", "conftest") else "solution"


def check_text(text: str, name: str) -> None:
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


def read_tests(tests: str) -> str:
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
