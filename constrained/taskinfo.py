"""What a task takes, read from its code without running it: its options (the ``__init__``
signature and the ``Args:`` section of its docstring), its defaults, its input formats
(``Input:``) and an example (``Example:``).

Built-in tasks are described from their module's *source* (``ast``), so ``constrained tasks``,
``constrained tasks TASK`` and the did-you-mean of a mistyped task option answer without
importing torch. A task registered as a Python object is described with :mod:`inspect`.
Both read the same docstring sections, so there is one source of truth: the task's code.

Docstring convention (class docstring, then ``__init__``'s)::

    class GraphColoring(Task):
        \"\"\"Graph colouring with k colours, validated exactly.   <- summary (first line)

        Input:
            a JSON object {"nodes": ..., "edges": ...}, or a file (.json, edge list)
        Example:
            constrained solve graph-coloring '{"edges": [[0, 1], [1, 2]]}' --k 3
        \"\"\"

        def __init__(self, k: int = 3) -> None:
            \"\"\"Args:
                k: number of colours
            \"\"\"
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import re
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECTIONS = ("Args", "Input", "Example", "Examples")
#: where the shipped models live (the same folder as ``constrained.shipped.MODELS_DIR``, whose module imports torch)
MODELS_DIR = Path(__file__).resolve().parent / "models"
_SECTION = re.compile(r"^(\w+):\s*$")
_ARG = re.compile(r"^\s*\**(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$")


@dataclass
class Option:
    """One task option: ``--name VALUE`` on the command line, ``load_task(TASK, name=value)``."""

    name: str
    default: str  # as written in the code ("3", "None", "'<FILL>'"); "" when required
    annotation: str = ""
    doc: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass
class TaskInfo:
    name: str
    summary: str
    options: list[Option] = field(default_factory=list)
    input: str = ""
    example: str = ""
    default_model: str | None = None
    doc: str = ""
    accepts_any: bool = False  # the factory takes **kwargs: any option name is passed on
    solver_defaults: dict[str, Any] = field(default_factory=dict)
    input_check: str | None = None  # "module:function": a torch-free check of a problem given as text

    def option_names(self) -> list[str]:
        return [o.name for o in self.options]


def split_sections(doc: str) -> tuple[str, dict[str, str]]:
    """(text before the first section, {section name: dedented body})."""
    lines = inspect.cleandoc(doc or "").splitlines()
    head: list[str] = []
    sections: dict[str, list[str]] = {}
    cur: list[str] | None = None
    for line in lines:
        m = _SECTION.match(line.strip())
        if m and m.group(1) in SECTIONS:
            cur = sections.setdefault(m.group(1).replace("Examples", "Example"), [])
            continue
        (head if cur is None else cur).append(line)
    return "\n".join(head).strip(), {k: textwrap.dedent("\n".join(v)).strip() for k, v in sections.items()}


def parse_args_section(text: str) -> dict[str, str]:
    """``name: text`` entries (continuation lines indented deeper) -> {name: text}."""
    out: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _ARG.match(line)
        if m and not line.startswith((" ", "\t")):
            last = m.group(1)
            out[last] = m.group(2).strip()
        elif last is not None:
            out[last] = (out[last] + " " + line.strip()).strip()
    return out


def _info(name: str, class_doc: str, init_doc: str, params: list[Option], default_model: str | None,
          accepts_any: bool, solver_defaults: Any = None, input_check: str | None = None) -> TaskInfo:
    head, sections = split_sections(class_doc)
    init_head, init_sections = split_sections(init_doc)
    docs = parse_args_section(sections.get("Args", "")) | parse_args_section(init_sections.get("Args", ""))
    for p in params:
        p.doc = docs.get(p.name, p.doc)
    summary = head.splitlines()[0].strip() if head else ""
    return TaskInfo(name=name, summary=summary, options=params,
                    input=sections.get("Input", init_sections.get("Input", "")),
                    example=sections.get("Example", init_sections.get("Example", "")),
                    default_model=default_model, doc=head, accepts_any=accepts_any,
                    solver_defaults=dict(solver_defaults or {}), input_check=input_check)


# --- from source (built-in tasks: no import) ------------------------------------------------
def _module_file(module: str) -> Path | None:
    """The source file of ``module`` without running it or its package's ``__init__`` (which may
    import torch): the package is located with ``find_spec``, the module file within it."""
    package, _, leaf = module.rpartition(".")
    try:
        spec = importlib.util.find_spec(package or module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if package:
        for root in spec.submodule_search_locations or []:
            for candidate in (Path(root) / f"{leaf}.py", Path(root) / leaf / "__init__.py"):
                if candidate.is_file():
                    return candidate
        return None
    return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None


def _class_attr(cls: ast.ClassDef, attr: str) -> Any:
    for node in cls.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) and node.value is not None else []
        for t in targets:
            if isinstance(t, ast.Name) and t.id == attr:
                try:
                    return ast.literal_eval(node.value)
                except ValueError:
                    return None
    raise KeyError(attr)


def _constants(tree: ast.Module, path: Path | None = None) -> dict[str, Any]:
    """Module-level ``NAME = literal`` assignments (defaults written as a constant's name), and the
    literals a ``from .sibling import NAME`` brings in (one level, when ``path`` is given)."""
    out = {}
    for node in tree.body:
        if path is not None and isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            sibling = path.parent / (node.module.replace(".", "/") + ".py")
            if sibling.is_file():
                theirs = _constants(ast.parse(sibling.read_text(encoding="utf-8")))
                out.update({a.asname or a.name: theirs[a.name] for a in node.names if a.name in theirs})
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def _default(node: ast.expr | None, consts: dict[str, Any]) -> str:
    if node is None:
        return ""
    if isinstance(node, ast.Name) and node.id in consts:
        return repr(consts[node.id])
    return ast.unparse(node)


def _params(fn: ast.FunctionDef, consts: dict[str, Any]) -> tuple[list[Option], bool]:
    a = fn.args
    pos = a.posonlyargs + a.args
    defaults = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    out = []
    for arg, d in [*zip(pos, defaults), *zip(a.kwonlyargs, a.kw_defaults)]:
        if arg.arg == "self":
            continue
        out.append(Option(arg.arg, _default(d, consts),
                          ast.unparse(arg.annotation) if arg.annotation is not None else ""))
    return out, a.kwarg is not None


def describe_source(name: str, module: str, qualname: str) -> TaskInfo | None:
    """A TaskInfo from the module's source, following base classes defined in the same module;
    None if the source cannot be read (the caller then imports the task)."""
    path = _module_file(module)
    if path is None:
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    chain: list[ast.ClassDef] = []
    cls = classes.get(qualname)
    while cls is not None:
        chain.append(cls)
        bases = [b.id for b in cls.bases if isinstance(b, ast.Name)]
        cls = next((classes[b] for b in bases if b in classes), None)
        if cls is None and bases and bases[0] != "Task":
            return None  # a base from elsewhere: let inspect answer
    if not chain:
        return None
    init = next((n for c in chain for n in c.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"),
                None)
    params, any_kw = _params(init, _constants(tree, path)) if init is not None else ([], False)
    default_model = _inherited(chain, "default_model")
    solver_defaults = _inherited(chain, "solver_defaults")
    class_doc = next((ast.get_docstring(c) for c in chain if ast.get_docstring(c)), "") or ""
    init_doc = (ast.get_docstring(init) or "") if init is not None else ""
    return _info(name, class_doc, init_doc, params, default_model, any_kw, solver_defaults,
                 _inherited(chain, "input_check"))


def _inherited(chain: list[ast.ClassDef], attr: str) -> Any:
    for c in chain:
        try:
            return _class_attr(c, attr)
        except KeyError:
            continue
    return None


# --- from an object (tasks registered at run time) -----------------------------------------
def describe_object(name: str, factory: Callable[..., Any]) -> TaskInfo:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None
    params, any_kw = [], sig is None
    for p in (sig.parameters.values() if sig is not None else []):
        if p.kind is p.VAR_KEYWORD:
            any_kw = True
        elif p.kind is not p.VAR_POSITIONAL:
            params.append(Option(p.name, "" if p.default is p.empty else repr(p.default),
                                 "" if p.annotation is p.empty else str(p.annotation)))
    class_doc = inspect.getdoc(factory) or "" if inspect.isclass(factory) else ""
    init_doc = inspect.getdoc(target) or "" if target is not object.__init__ else ""
    if not inspect.isclass(factory):
        class_doc, init_doc = init_doc, ""
    return _info(name, class_doc, init_doc, params, getattr(factory, "default_model", None), any_kw,
                 getattr(factory, "solver_defaults", None), getattr(factory, "input_check", None))


def shipped_model(folder: str | None) -> Path | None:
    """The shipped model folder ``constrained/models/FOLDER`` when it holds a model or an adapter."""
    if not folder:
        return None
    path = MODELS_DIR / folder
    return path if any((path / f).exists() for f in ("config.json", "adapter_config.json")) else None


def format_info(info: TaskInfo) -> str:
    """``constrained tasks TASK``: summary, model, options with defaults, input, solver defaults, example."""
    out = [f"{info.name}: {info.summary}"]
    rest = info.doc.split("\n", 1)[1].strip() if "\n" in info.doc else ""
    if rest:
        out += ["", textwrap.indent(rest, "  ")]
    shipped = shipped_model(info.default_model)
    out += ["", "model: " + (f"shipped (constrained/models/{info.default_model})" if shipped else
                             f"none shipped; train one with `constrained finetune {info.name}` and pass --model DIR")]
    out += ["", f"task options (constrained solve {info.name} INPUT --option VALUE; "
                f"load_task({info.name!r}, option=value)):"]
    if not info.options:
        out.append("  (none)")
    width = max([len(o.flag) for o in info.options] + [8]) + 2
    cols = max(60, min(100, shutil.get_terminal_size((100, 24)).columns))
    for o in info.options:
        default = ("(optional)" if o.default == "None" else f"(default {o.default})") if o.default else "(required)"
        doc = " ".join(x for x in (o.doc, default) if x)
        out.append(textwrap.fill(doc, cols, initial_indent=f"  {o.flag:{width}s}",
                                 subsequent_indent=" " * (width + 2)))
    if info.solver_defaults:
        pairs = ", ".join(f"{k}={v!r}" for k, v in info.solver_defaults.items())
        out += ["", f"solver defaults (the task's own; command-line options win): {pairs}"]
    if info.input:
        out += ["", "input:", textwrap.indent(info.input, "  ")]
    if info.example:
        out += ["", "example:", textwrap.indent(info.example, "  ")]
    return "\n".join(out)


def suggest(word: str, candidates: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
