"""Reading graph problems from files and drawing graphs (networkx + matplotlib)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx

from constrained.errors import InvalidProblem

PALETTE = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
]


ASCII_DIGITS = frozenset("0123456789")


def _check_digits(token: str, where: str, ln_no: int) -> None:
    """Only ASCII digits count as digits: any other (full-width, Arabic-Indic, superscript...) is refused."""
    for ch in token:
        if ch not in ASCII_DIGITS and (ch.isdigit() or unicodedata.category(ch) == "Nd"):
            name = unicodedata.name(ch, f"U+{ord(ch):04X}")
            raise InvalidProblem(
                f"{where} line {ln_no}: {ch!r} ({name}, U+{ord(ch):04X}) is not an ASCII digit; "
                "only 0-9 count as numbers in graph files"
            )


def _node(label: str, where: str, ln_no: int) -> Hashable:
    """A node name: an int when it is ASCII digits (with an optional minus), else the text."""
    _check_digits(label, where, ln_no)
    body = label[1:] if label.startswith("-") else label
    return int(label) if body and all(ch in ASCII_DIGITS for ch in body) else label


def _ascii_int(token: str, where: str, ln_no: int, what: str) -> int:
    _check_digits(token, where, ln_no)
    if not token or not all(ch in ASCII_DIGITS for ch in token):
        raise InvalidProblem(f"{where} line {ln_no}: {what} must be a non-negative integer, got {token!r}")
    return int(token)


def read_edge_list(text: str, where: str = "edge list") -> dict[str, Any]:
    """``u v`` per line (``#`` comments; a line with one name is an isolated node) ->
    ``{"nodes": [...], "edges": [[u, v], ...]}``. Names of ASCII digits become ints; any other
    digit character (full-width, Arabic-Indic...) raises InvalidProblem naming the line."""
    nodes: dict[Hashable, None] = {}
    edges = []
    for ln_no, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        if len(parts) == 1:
            nodes.setdefault(_node(parts[0], where, ln_no))
        elif len(parts) in (2, 3):  # a third column (a weight or {}) is ignored
            u, v = _node(parts[0], where, ln_no), _node(parts[1], where, ln_no)
            nodes.setdefault(u)
            nodes.setdefault(v)
            edges.append([u, v])
        else:
            raise InvalidProblem(f"{where} line {ln_no}: expected 'u v', got {line!r}")
    return {"nodes": list(nodes), "edges": edges}


def read_dimacs(text: str, where: str = "DIMACS file") -> dict[str, Any]:
    """DIMACS ``.col`` text -> ``{"nodes": [1..N], "edges": [[u, v], ...]}``.

    Lines: ``c`` comments, one ``p edge N M`` (``p col N M`` too), ``e U V`` edges with nodes
    1..N (ASCII digits only). Duplicate and reversed edges are tolerated (the parser merges them);
    a self-loop, a node outside 1..N, an edge before the ``p`` line or an unknown line raises
    InvalidProblem naming the line. Source: the DIMACS challenge format,
    https://mat.tepper.cmu.edu/COLOR/instances.html."""
    n: int | None = None
    edges: list[list[int]] = []
    for ln_no, raw in enumerate(text.splitlines(), 1):
        parts = raw.split()
        if not parts or parts[0] == "c":
            continue
        kind = parts[0]
        if kind == "p":
            if n is not None:
                raise InvalidProblem(f"{where} line {ln_no}: a second 'p' line")
            if len(parts) != 4 or parts[1] not in ("edge", "edges", "col"):
                raise InvalidProblem(f"{where} line {ln_no}: expected 'p edge N M', got {raw.strip()!r}")
            n = _ascii_int(parts[2], where, ln_no, "the node count N")
            _ascii_int(parts[3], where, ln_no, "the edge count M")
        elif kind == "e":
            if n is None:
                raise InvalidProblem(f"{where} line {ln_no}: edge before the 'p edge N M' line")
            if len(parts) != 3:
                raise InvalidProblem(f"{where} line {ln_no}: expected 'e U V', got {raw.strip()!r}")
            u = _ascii_int(parts[1], where, ln_no, "a node")
            v = _ascii_int(parts[2], where, ln_no, "a node")
            for x in (u, v):
                if not 1 <= x <= n:
                    raise InvalidProblem(f"{where} line {ln_no}: node {x} is outside 1..{n}")
            if u == v:
                raise InvalidProblem(
                    f"{where} line {ln_no}: self-loop at node {u}: a node cannot differ from itself in colour"
                )
            edges.append([u, v])
        elif kind in ("n", "x"):  # node weights / extensions of some instance files: not used
            continue
        else:
            raise InvalidProblem(f"{where} line {ln_no}: unknown line type {kind!r} (DIMACS: c, p, e)")
    if n is None:
        raise InvalidProblem(f"{where}: no 'p edge N M' line")
    return {"nodes": list(range(1, n + 1)), "edges": edges}


def _is_dimacs(path: Path, text: str) -> bool:
    if path.suffix == ".col":
        return True
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("c"):
            return s.startswith("p ")
    return False


def read_graph_file(path: Path) -> list[Any]:
    """Problems in a file: JSON (one object or a list of them), JSON lines, DIMACS ``.col`` (by suffix
    or a first ``p`` line) or an edge list."""
    path = Path(path)
    text = path.read_text()
    stripped = text.strip()
    if path.suffix == ".jsonl" or (path.suffix != ".json" and stripped.startswith("{") and "\n{" in stripped):
        out = []
        for i, line in enumerate(stripped.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise InvalidProblem(f"{path} line {i}: not JSON: {e.msg}") from None
        return out
    if path.suffix == ".json" or stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise InvalidProblem(f"{path}: not JSON: {e.msg} (line {e.lineno})") from None
        return list(data) if isinstance(data, list) else [data]
    if _is_dimacs(path, text):
        return [read_dimacs(text, where=str(path))]
    return [read_edge_list(text, where=str(path))]


def _no_constant(name: str) -> Any:
    raise InvalidProblem(f"JSON has no {name}: non-finite numbers are refused")


def load_json_problem(problem: Any, what: str) -> Any:
    """A JSON string becomes its object; anything else is returned as is."""
    if isinstance(problem, str):
        s = problem.strip()
        if not s.startswith("{"):
            if "\n" not in s and (s.endswith((".col", ".json", ".jsonl", ".txt", ".edges")) or "/" in s):
                raise InvalidProblem(f"no such file: {s} (a {what} is a file or a JSON object)")
            raise InvalidProblem(f"a {what} given as text must be a JSON object, got {s[:40]!r}")
        try:
            return json.loads(s, parse_constant=_no_constant)
        except (json.JSONDecodeError, RecursionError) as e:
            raise InvalidProblem(f"{what} is not valid JSON: {getattr(e, 'msg', e)}") from None
    return problem


def draw_graph(
    g: nx.Graph,
    path: str | Path,
    colours: Mapping[Hashable, int | None] | None = None,
    bad_edges: set[frozenset] | None = None,
    title: str | None = None,
) -> Path:
    """Write a PNG of ``g``: nodes filled by colour index (grey when uncoloured), ``bad_edges``
    drawn thick red."""
    import matplotlib  # noqa: PLC0415 (drawing only)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    pos = nx.spring_layout(g, seed=0)
    node_colors = []
    for v in g.nodes():
        c = None if colours is None else colours.get(v)
        node_colors.append("#dddddd" if c is None else PALETTE[c % len(PALETTE)])
    bad = bad_edges or set()
    edge_colors = ["#d62728" if frozenset((u, v)) in bad else "#555555" for u, v in g.edges()]
    widths = [3.0 if frozenset((u, v)) in bad else 1.0 for u, v in g.edges()]
    fig, ax = plt.subplots(figsize=(6, 6))
    nx.draw_networkx(
        g,
        pos,
        ax=ax,
        node_color=node_colors,
        edge_color=edge_colors,
        width=widths,
        with_labels=g.number_of_nodes() <= 60,
        font_size=8,
        node_size=300,
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def format_coloring(solution: Mapping[Hashable, int | None] | None, style: str = "json") -> str:
    """A colouring as text.

    ``"json"``: an object ``{"node": colour}`` when the labels are all strings or all ints (the JSON
    keys are then unambiguous), else a list of ``[node, colour]`` pairs (tuples written as lists), so
    ``1`` and ``"1"`` never merge. ``"dimacs"``: DIMACS-style solution lines, ``s col K`` (colours
    used) then ``l NODE COLOUR`` per node with colours counted from 1; an uncoloured node is listed
    in a ``c`` comment. Colours in the JSON forms count from 0, as in ``Result.solution``."""
    if style not in ("json", "dimacs"):
        raise InvalidProblem(f"unknown colouring format {style!r}: use 'json' or 'dimacs'")
    if solution is None:
        return "null" if style == "json" else "c no colouring"
    if style == "dimacs":
        used = {c for c in solution.values() if c is not None}
        lines = [f"s col {len(used)}"]
        missing = [v for v, c in solution.items() if c is None]
        lines += [f"l {v} {c + 1}" for v, c in solution.items() if c is not None]
        if missing:
            lines.append(f"c uncoloured: {' '.join(str(v) for v in missing)}")
        return "\n".join(lines)
    labels = list(solution)
    if all(isinstance(v, str) for v in labels) or all(isinstance(v, int) and not isinstance(v, bool)
                                                        for v in labels):
        return json.dumps({str(v): c for v, c in solution.items()})
    return json.dumps([[v, c] for v, c in solution.items()], default=str)
