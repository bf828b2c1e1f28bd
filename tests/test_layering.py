"""Layering, read from the source with ``ast`` (nothing is imported): no import circle among the
package's modules, the engine imports no task and no training code, inference imports no training
code, and no source file grows past the size a reader keeps in their head (docs/architecture.md,
*Layers*).

The package's modules are found through ``[tool.setuptools] package-dir`` of pyproject.toml
(``constrained.engine`` is the folder ``engine/``, ``constrained.tasks`` is ``tasks/``...).
An import counts at module level when it runs while the module is imported: top-level statements,
class bodies, ``if`` / ``try`` blocks, but not function bodies and not ``if TYPE_CHECKING:``
blocks (type-only imports never run, so no rule counts them). The circle rule holds for imports at
any level (a lazy import makes a circle survivable, not acceptable); the layer rules read every
import, at any level, and follow them transitively, naming the chain that breaks a rule.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "constrained"
ENGINE = "constrained.engine"
FORBIDDEN_FOR_ENGINE = ("constrained.tasks", "constrained.finetune")
TRAINING = "constrained.finetune"
#: the modules a solve runs through: none may reach the training code, at any level
INFERENCE = ("constrained.api", "constrained.solver", "constrained.search", "constrained.local_search",
             "constrained.loading", "constrained.adapters", "constrained.batch", "constrained.batch_records",
             "constrained.batch_files")
#: the folders whose source files must stay short (issue #20: about 500 lines)
SIZE_ROOTS = ("constrained", "tasks", "engine", "finetune")
MAX_LINES = 550


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    eager: set[str] = field(default_factory=set)  # imported while the module itself is imported
    every: set[str] = field(default_factory=set)  # imported anywhere in it (functions too)


def package_dirs(root: Path) -> dict[str, Path]:
    """``[tool.setuptools] package-dir`` of pyproject.toml: package name -> folder."""
    conf = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {pkg: root / folder for pkg, folder in conf.items()}


def find_modules(dirs: dict[str, Path]) -> dict[str, Module]:
    """Every module of the packages: ``name -> Module``, from the ``*.py`` files under each
    package folder whose folders up to it are packages (hold an ``__init__.py``)."""
    mods: dict[str, Module] = {}
    for pkg, folder in dirs.items():
        if not (folder / "__init__.py").exists():
            continue
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder)
            if any(not (folder / Path(*rel.parts[:i]) / "__init__.py").exists() for i in range(1, len(rel.parts))):
                continue
            parts = [pkg, *rel.parts[:-1]]
            if path.stem != "__init__":
                parts.append(path.stem)
            name = ".".join(parts)
            mods.setdefault(name, Module(name, path, path.stem == "__init__"))
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(node: ast.AST, eager: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """(import statement, runs at module import time) for every import under ``node``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, eager
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _imports(child, False)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):  # type-only: never runs
            for stmt in child.orelse:
                yield from _imports(ast.Module(body=[stmt], type_ignores=[]), eager)
        else:
            yield from _imports(child, eager)


def _targets(mod: Module, node: ast.Import | ast.ImportFrom, known: dict[str, Module]) -> set[str]:
    """The package's modules an import statement names (``from pkg import sub`` names ``pkg.sub``
    when that is a module, else ``pkg``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem for a in node.names]
    out = set()
    for n in names:
        while n and n not in known and "." in n:  # `import a.b.c` of a name inside a module: its module
            n = n.rsplit(".", 1)[0]
        if n in known:
            out.add(n)
    return out


def import_graph(root: Path = ROOT) -> dict[str, Module]:
    mods = find_modules(package_dirs(root))
    for mod in mods.values():
        tree = ast.parse(mod.path.read_text(encoding="utf-8"), str(mod.path))
        for node, eager in _imports(tree, True):
            targets = _targets(mod, node, mods) - {mod.name}
            mod.every |= targets
            if eager:
                mod.eager |= targets
    return mods


def cycles(mods: dict[str, Module]) -> list[list[str]]:
    """The import circles among module-level imports: strongly connected components (Tarjan)
    of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(mods[v].eager):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    return found


def reaches(mods: dict[str, Module], start: str, prefixes: tuple[str, ...]) -> list[str] | None:
    """The shortest chain of imports (any level) from ``start`` to a module under one of
    ``prefixes``, or None."""
    def under(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    parent: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(mods[v].every):
            if w in parent:
                continue
            parent[w] = v
            if under(w):
                chain = [w]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                return chain[::-1]
            queue.append(w)
    return None


# --- the rules, on this repository --------------------------------------------------------------
GRAPH = import_graph()


def test_the_graph_sees_the_whole_package():
    for name in (PACKAGE, "constrained.cli", "constrained.loading", ENGINE, "constrained.engine.noise",
                 "constrained.tasks", "constrained.tasks.sandbox", "constrained.tasks.graphs.coloring",
                 TRAINING, *INFERENCE):
        assert name in GRAPH, f"{name} not found: the package map in pyproject.toml changed?"
    assert "constrained.engine.noise" in GRAPH["constrained.solver"].eager


def test_every_package_folder_is_packaged():
    """A sub-package missing from ``[tool.setuptools] packages`` imports from the checkout but not
    from the wheel (constrained.constraints was one)."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {n for n, m in GRAPH.items() if m.is_package}
    assert packages <= listed, f"packages missing from pyproject.toml: {sorted(packages - listed)}"


def test_no_import_circle_at_module_level():
    found = cycles(GRAPH)
    assert not found, "import circles (module-level imports): " + "; ".join(" <-> ".join(c) for c in found)


def test_no_import_circle_even_through_function_level_imports():
    """A lazy import does not make a circle acceptable, only survivable (cli <-> batch_cli was one)."""
    lazy = {n: Module(m.name, m.path, m.is_package, eager=set(m.every)) for n, m in GRAPH.items()}
    found = cycles(lazy)
    assert not found, "import circles (imports at any level): " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if n == ENGINE or n.startswith(ENGINE + ".")))
def test_the_engine_imports_no_task_and_no_training_code(name):
    chain = reaches(GRAPH, name, FORBIDDEN_FOR_ENGINE)
    assert chain is None, "the engine reaches up: " + " -> ".join(chain)


@pytest.mark.parametrize("name", INFERENCE)
def test_inference_imports_no_training_code(name):
    chain = reaches(GRAPH, name, (TRAINING,))
    assert chain is None, "inference imports training code: " + " -> ".join(chain)


def _long_files() -> list[tuple[str, int]]:
    dirs = package_dirs(ROOT)
    out = []
    for folder in sorted({dirs.get(PACKAGE, ROOT / PACKAGE), *(ROOT / r for r in SIZE_ROOTS)}):
        for path in sorted(folder.rglob("*.py")):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                out.append((str(path.relative_to(ROOT)), n))
    return out


def test_no_source_file_over_the_size_limit():
    long = _long_files()
    assert not long, f"source files over {MAX_LINES} lines: " + ", ".join(f"{p} ({n})" for p, n in long)


# --- the checker itself, on a planted package: it finds what it must -----------------------------
def _plant(tmp_path: Path, files: dict[str, str]) -> dict[str, Module]:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools]\npackage-dir = { "constrained" = "pkg", "constrained.engine" = "eng", '
        '"constrained.finetune" = "ft" }\n')
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return import_graph(tmp_path)


def test_the_checker_finds_a_circle_a_lazy_reach_and_a_chain(tmp_path):
    mods = _plant(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .b import x\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import c\n"
                    "try:\n    import constrained.a as a\nexcept ImportError:\n    pass\n",
        "pkg/c.py": "def f():\n    from constrained.b import x\n",  # function level: no circle
        "pkg/api.py": "from .loading import load\n",
        "pkg/loading.py": "def load():\n    from constrained.finetune.lora import load_adapter\n",
        "eng/__init__.py": "",
        "eng/corpus.py": "class C:\n    from ..c import f\n",  # a class body runs at import
        "ft/__init__.py": "",
        "ft/lora.py": "load_adapter = None\n",
    })
    assert cycles(mods) == [["constrained.a", "constrained.b"]]
    assert mods["constrained.b"].eager == {"constrained.a"} and mods["constrained.b"].every == {
        "constrained.a"}  # the TYPE_CHECKING import of c never runs
    assert mods["constrained.engine.corpus"].eager == {"constrained.c"}
    assert reaches(mods, "constrained.api", (TRAINING,)) == [
        "constrained.api", "constrained.loading", "constrained.finetune.lora"]
    assert reaches(mods, "constrained.engine.corpus", ("constrained.tasks", TRAINING)) is None
    assert reaches(mods, "constrained.c", ("constrained.a",)) == ["constrained.c", "constrained.b", "constrained.a"]
