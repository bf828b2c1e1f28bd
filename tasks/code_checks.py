"""Static checks of a completed Python file, and where in the hole a failure lies.

The code tasks (:mod:`constrained.tasks.code`) accept a fill only when the file *compiles*, the
names the hole uses *resolve*, and the user's tests (if any) pass. "Names resolve" is pyflakes'
``UndefinedName`` (https://github.com/PyCQA/pyflakes) restricted to names that start inside the
hole: ``return ific`` compiles but uses a name nothing defines. Names undefined outside the hole
are the file's own business (a snippet may use names defined elsewhere) and are not held against
the fill. Each undefined name implicates the hole tokens that spell it, so the solver re-noises
exactly those.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from pyflakes import checker
from pyflakes import messages as pyflakes_messages


@dataclass(frozen=True)
class UndefinedName:
    """A name used inside the hole that nothing defines: 1-based ``line``, 0-based character
    ``col`` in that line."""

    name: str
    line: int
    col: int


def token_spans(texts: Sequence[str], first_line: int, col0: int) -> list[tuple[int, int, int, int]]:
    """Where each hole token lies in the completed file: (first line, start column, last line, end
    column) per token, lines 1-based, columns 0-based characters, end exclusive; the hole starts at
    ``first_line``, column ``col0``."""
    spans = []
    line, col = first_line, col0
    for text in texts:
        a, c = line, col
        nl = text.count("\n")
        if nl:
            line, col = line + nl, len(text) - text.rfind("\n") - 1
        else:
            col += len(text)
        spans.append((a, c, line, col))
    return spans


def _char_col(source_lines: list[str], line: int, byte_col: int) -> int:
    """ast's column offsets count UTF-8 bytes; the hole's spans count characters."""
    if not 1 <= line <= len(source_lines):
        return byte_col
    return len(source_lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def undefined_names(source: str, start: tuple[int, int], end: tuple[int, int],
                    filename: str = "<file>") -> list[UndefinedName]:
    """pyflakes' undefined names of ``source`` (which must compile) that begin inside the hole,
    ``start`` <= (line, column) < ``end`` (lines 1-based, columns 0-based characters)."""
    bom = source.startswith("\ufeff")  # compile() takes a BOM, ast.parse of a str does not
    text = source[1:] if bom else source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(text, filename=filename)
    found = checker.Checker(tree, filename=filename).messages
    lines = text.splitlines()
    out = []
    for m in found:
        if not isinstance(m, pyflakes_messages.UndefinedName):
            continue
        col = _char_col(lines, m.lineno, m.col) + (1 if bom and m.lineno == 1 else 0)
        if start <= (m.lineno, col) < end:
            out.append(UndefinedName(str(m.message_args[0]), m.lineno, col))
    return out


def tokens_spelling(spans: Sequence[tuple[int, int, int, int]], names: Sequence[UndefinedName]) -> list[int]:
    """Positions of the hole tokens that overlap any of ``names`` (the tokens to re-noise)."""
    out = set()
    for n in names:
        lo, hi = (n.line, n.col), (n.line, n.col + len(n.name))
        for i, (a, c, b, d) in enumerate(spans):
            if (a, c) < hi and lo < (b, d):
                out.add(i)
    return sorted(out)


_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")
_SUMMARY = re.compile(r"\b(passed|failed|errors?)\b.* in [\d.]+s")


def test_counts(output: str) -> tuple[int, int] | None:
    """(passed, run) from pytest's summary line (``2 passed in 0.01s``, ``1 failed, 2 passed in
    0.03s``); None when there is none (tests given as ``assert`` statements, or a run killed
    before its summary). pytest runs with ``-x``, so after a failure "run" counts the tests run
    up to it."""
    for line in reversed(output.splitlines()):
        if _SUMMARY.search(line):
            counts = {"passed": 0, "failed": 0, "error": 0}
            for k, what in _COUNT.findall(line):
                counts["error" if what.startswith("error") else what] += int(k)
            return counts["passed"], counts["passed"] + counts["failed"] + counts["error"]
    return None
