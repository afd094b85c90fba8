"""The shape of mepd's imports: no cycles, every module importable on its own, and the layers DESIGN.md names.

Read from the source with `ast` (module-level imports, outside `if TYPE_CHECKING:`, make the graph that
can cycle), and checked for real by importing each module alone in a clean interpreter.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT

MEPD = ROOT / "mepd"

# (importer, what it must never reach, through any import, even one inside a function or for typing only)
LAYERS = [
    ("mepd.sources", "mepd.store"),  # a source knows nothing of stores...
    ("mepd.store", "mepd.sources"),  # ...and a store nothing of sources: they meet through mepd.model
    ("mepd.config", "mepd.alerts"),  # config is below alerts: the rule languages live in mepd.config.syntax
]


def modules() -> dict[str, Path]:
    """Every module of mepd by dotted name; a package by its own name."""
    found = {}
    for path in sorted(MEPD.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


@functools.cache
def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text())


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _import_nodes(node: ast.AST, module_level: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported (module_level), or all of them."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif not module_level or not (
            isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
        ):
            yield from _import_nodes(child, module_level)


def imports(name: str, module_level: bool) -> set[str]:
    """The mepd modules `name` imports."""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    return _imports_of(_tree(name), package, module_level)


def _imports_of(tree: ast.Module, package: str, module_level: bool) -> set[str]:
    """Importing `a.b.c` runs the package `a.b` first: it counts too, but for the packages the importer
    is in itself (already being imported when it runs)."""
    targets: set[str] = set()
    for node in _import_nodes(tree, module_level):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
        targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names)
    found = set()
    for target in targets:
        if target.startswith("mepd."):
            parts = target.split(".")
            parents = (".".join(parts[:i]) for i in range(2, len(parts)))
            found.update([target, *(p for p in parents if not _under(package, p))])
    return found


def external_imports() -> set[str]:
    """What mepd imports at module level from outside itself, and the names it imports from there."""
    names: set[str] = set()
    for name in MODULES:
        for node in _import_nodes(_tree(name), module_level=True):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif not node.level and node.module:  # and the names, which may be modules (from aiohttp import web)
                names.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return {n for n in names if not _under(n, "mepd") and not _under(n, "__future__")}


def graph(module_level: bool) -> dict[str, set[str]]:
    return {name: imports(name, module_level) for name in MODULES}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan), as the path that closes it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            group.append(v)
            if len(group) > 1 or v in edges[v]:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_path_through(group, edges) for group in groups]


def _path_through(group: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest import path from the group's first module back to itself."""
    start = min(group)
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(edges[v] & set(group)):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                todo.append(w)
    raise AssertionError(f"no cycle through {group}")


def reachable(start: str, edges: dict[str, set[str]]) -> dict[str, list[str]]:
    """Every module `start` reaches, with the import path that reaches it."""
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(edges[v]):
            if w not in paths:
                paths[w] = [*paths[v], w]
                todo.append(w)
    return paths


def test_the_graph_sees_imports() -> None:
    """The parser finds what a file says: plain, `from pkg import module`, relative, guarded, lazy, typing-only."""
    tree = ast.parse(
        "import mepd.config.syntax\n"
        "from mepd import config\n"
        "from .errors import quoted\n"
        "try:\n    from mepd.model import LogRecord\nexcept ImportError:\n    pass\n"
        "if TYPE_CHECKING:\n    from mepd.config import convert\n"
        "def f():\n    from mepd.config import schema\n"
    )
    runs = {"mepd.config.syntax", "mepd.config", "mepd.errors", "mepd.model"}
    assert _imports_of(tree, "mepd", module_level=True) == runs
    assert _imports_of(tree, "mepd", module_level=False) == runs | {"mepd.config.convert", "mepd.config.schema"}
    inside = ast.parse("from mepd.config.syntax import glob_error\n")
    assert _imports_of(inside, "mepd.config", module_level=True) == {"mepd.config.syntax"}


def test_no_import_cycles() -> None:
    found = cycles(graph(module_level=True))
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize(("importer", "forbidden"), LAYERS)
def test_layers(importer: str, forbidden: str) -> None:
    edges = graph(module_level=False)
    bad = [" -> ".join(path)
           for name in MODULES if _under(name, importer)
           for target, path in reachable(name, edges).items() if _under(target, forbidden)]
    assert not bad, f"{importer} must not import {forbidden}:\n" + "\n".join(bad)


# Runs in its own interpreter, which never imports mepd itself: it forks one child per module, so each
# imports its module into a sys.modules holding no mepd module, as `python -c "import mod"` would, without
# paying an interpreter start and the third-party imports (loaded once, before the forks) each time.
_IMPORT_EACH = r"""
import importlib, json, os, sys, traceback

names, external = json.loads(sys.stdin.read())
for lib in external:
    try:
        importlib.import_module(lib)
    except Exception:
        pass  # the child that needs it reports it
assert not any(m == "mepd" or m.startswith("mepd.") for m in sys.modules)
failed, running, todo = {}, {}, list(names)
while todo or running:
    while todo and len(running) < max(2, os.cpu_count() or 1):
        name = todo.pop()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                importlib.import_module(name)
                os._exit(0)
            except BaseException:
                os.write(w, traceback.format_exc()[-8000:].encode())
                os._exit(1)
        os.close(w)
        running[pid] = (name, r)
    pid, status = os.wait()
    name, r = running.pop(pid)
    with os.fdopen(r, "rb") as fh:
        text = fh.read().decode()
    if status:
        failed[name] = text or f"exit status {status}"
print(json.dumps(failed))
"""


def test_every_module_imports_alone() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH], input=json.dumps([sorted(MODULES), sorted(external_imports())]),
        capture_output=True, text=True, timeout=300, check=True, cwd=ROOT,
    )
    failed = json.loads(result.stdout)
    assert not failed, "\n".join(f"import {name} alone fails:\n{text}" for name, text in sorted(failed.items()))
