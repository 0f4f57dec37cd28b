"""The package's shape, read from its source with ``ast`` (nothing is imported).

Over every ``.py`` file under ``superintendent/``:

(a) no import cycle between the package's modules, counting every import
    statement, those inside functions too (a deferred import must not hide a
    circle); ``if TYPE_CHECKING:`` blocks left out. ``import superintendent.x.y`` and ``from
    superintendent.x import y`` (``y`` a submodule) are edges to
    ``superintendent.x.y``; ``from superintendent.x import name`` (not a
    submodule) and ``import superintendent.x`` are edges to ``superintendent.x``
    itself, i.e. to its ``__init__``. The parent packages Python also
    initialises on the way are left out: a package's ``__init__`` importing its
    submodules is no cycle with submodules that import their siblings
    directly, only with one that imports from the package.
(b) no module longer than 600 lines;
(c) no import of a ``superintendent`` module inside a function (third-party
    imports inside functions, e.g. of heavy libraries, are fine), except the
    few listed in ``DEFERRED`` with the reason for each (start-up time, an
    optional extra); (a) still counts them, so none of them dodges a circle;
(d) only ``superintendent/app/`` imports streamlit (``streamlit`` and its
    ``streamlit_*`` components; ``pages/`` and ``streamlit_app.py`` are outside
    the package and free to), and nothing outside it imports
    ``superintendent.app``, which would bring streamlit along.

Each failure message lists every offender, and (a) prints each cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "superintendent"
MAX_LINES = 600
APP = f"{PACKAGE}.app"

# Function-local imports of the package that are there on purpose, none of them to dodge a circle (test (a) counts them).
DEFERRED = {  # file -> (the module it may import inside functions, or "*" for any of the package's; why)
    "superintendent/__init__.py": ("superintendent.core", "`superintendent.Superintendent` is loaded on first use, so "
                                  "`import superintendent.acquisition_functions` stays light"),
    "superintendent/cli.py": ("*", "each command loads only the layer it needs: `superintendent --help` imports no model, "
                             "importer or scheduler code (1.8 s instead of 4.6 s to start on the 2-core machine)"),
    "superintendent/core.py": ("superintendent.notebook", "the notebook widget needs the optional extra `superintendent[notebook]` (ipywidgets); "
                              "it is imported only when `.widget` is first used"),
}


@dataclass(frozen=True)
class Import:
    target: str  # the module or package imported from, resolved (absolute, dotted)
    names: tuple[str, ...]  # for `from target import a, b`: (a, b); for `import target`: ()
    line: int
    in_function: bool


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    lines: int
    imports: list[Import]

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(ROOT))


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The module a ``from ... import`` names, relative imports resolved against the importing module ``name``."""
    if not node.level:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(tree: ast.Module, name: str, is_package: bool) -> Iterator[Import]:
    """Every import statement outside ``if TYPE_CHECKING:`` blocks, with whether it is inside a function."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[Import]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # the else branch does run
                yield from walk(child, in_function)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, (), node.lineno, in_function)
        elif isinstance(node, ast.ImportFrom):
            yield Import(_absolute(node, name, is_package), tuple(a.name for a in node.names), node.lineno, in_function)
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            yield from walk(child, inside)

    yield from walk(tree, False)


def load_package() -> dict[str, Module]:
    modules = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        name, is_package = module_name(path)
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        modules[name] = Module(name, path, is_package, len(text.splitlines()), list(_imports(tree, name, is_package)))
    return modules


MODULES = load_package()


def targets(imp: Import, modules: dict[str, Module]) -> list[str]:
    """The package's modules an import statement loads by name (see the module docstring); [] for other imports."""
    if imp.target != PACKAGE and not imp.target.startswith(PACKAGE + "."):
        return []
    if not imp.names:  # import a.b.c
        return [imp.target] if imp.target in modules else []
    found = []
    for name in imp.names:
        sub = f"{imp.target}.{name}"
        if sub in modules:
            found.append(sub)
        elif imp.target in modules:
            found.append(imp.target)
    return list(dict.fromkeys(found))


def import_graph(modules: dict[str, Module]) -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first such import}, every import statement (in functions too)."""
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for module in modules.values():
        for imp in module.imports:
            for target in targets(imp, modules):
                if target != module.name:
                    graph[module.name].setdefault(target, imp.line)
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def a_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """One cycle through the component's first module: the shortest way back to it (breadth first)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {component}")  # a component of two or more always has one


def describe_cycle(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    """``a -> b -> a``, then where each of those imports is."""
    steps = [f"{MODULES[a].rel if a in MODULES else a}:{graph[a][b]} imports {b}" for a, b in zip(cycle, cycle[1:])]
    return " -> ".join(cycle) + "".join(f"\n      {step}" for step in steps)


def test_the_package_is_found():
    assert PACKAGE in MODULES and MODULES[PACKAGE].is_package
    assert len(MODULES) > 10


def test_no_import_cycle():
    graph = import_graph(MODULES)
    components = strongly_connected(graph)
    report = []
    for component in components:
        cycle = a_cycle(graph, component)
        report.append(f"{len(component)} modules import each other ({', '.join(component)}); one cycle:\n    "
                      + describe_cycle(graph, cycle))
    print("\n".join(report))
    assert not components, f"{len(components)} import cycle(s) between modules of {PACKAGE}:\n" + "\n".join(report)


def test_no_module_longer_than_600_lines():
    long = sorted((m.lines, m.rel) for m in MODULES.values() if m.lines > MAX_LINES)
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(f"  {path}: {n} lines" for n, path in reversed(long))


def test_no_function_local_import_of_the_package():
    found = [f"  {m.rel}:{imp.line}: " + (f"from {imp.target} import {', '.join(imp.names)}" if imp.names else f"import {imp.target}")
             for m in MODULES.values() for imp in m.imports
             if imp.in_function and (imp.target == PACKAGE or imp.target.startswith(PACKAGE + "."))
             and DEFERRED.get(m.rel, ("", ""))[0] not in ("*", imp.target)]
    assert not found, f"imports of {PACKAGE} modules inside functions (import them at the top of the module):\n" + "\n".join(found)


def _in_app(module: Module) -> bool:
    return module.name == APP or module.name.startswith(APP + ".")


def test_only_the_app_imports_streamlit():
    found = [f"  {m.rel}:{imp.line}: {imp.target}" for m in MODULES.values() if not _in_app(m) for imp in m.imports
             if imp.target.split(".")[0] == "streamlit" or imp.target.split(".")[0].startswith("streamlit_")]
    assert not found, f"streamlit imported outside {APP.replace('.', '/')}/:\n" + "\n".join(found)


def test_nothing_outside_the_app_imports_the_app():
    found = [f"  {m.rel}:{imp.line}: {target}" for m in MODULES.values() if not _in_app(m) for imp in m.imports
             for target in targets(imp, MODULES) if target == APP or target.startswith(APP + ".")]
    assert not found, f"{APP} (and with it streamlit) imported outside {APP.replace('.', '/')}/:\n" + "\n".join(found)


# --------------------------------------------------------------------------- the checks' own logic, on made-up modules


def _fake(sources: dict[str, str]) -> dict[str, Module]:
    modules = {}
    for rel, text in sources.items():
        path = ROOT / rel
        name, is_package = module_name(path)
        modules[name] = Module(name, path, is_package, len(text.splitlines()), list(_imports(ast.parse(text), name, is_package)))
    return modules


def test_a_package_importing_its_submodules_is_no_cycle_unless_one_imports_the_package():
    fine = _fake({
        "superintendent/__init__.py": "",
        "superintendent/q/__init__.py": "from superintendent.q.a import f\nfrom .b import g\n",
        "superintendent/q/a.py": "from superintendent.q.b import g\nfrom superintendent.q import b\n",
        "superintendent/q/b.py": "import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from superintendent.q import f\n"
                                 "def h():\n    import json\n",
    })
    graph = import_graph(fine)
    assert graph["superintendent.q"] == {"superintendent.q.a": 1, "superintendent.q.b": 2}
    assert graph["superintendent.q.a"] == {"superintendent.q.b": 1}
    assert strongly_connected(graph) == []
    assert [(i.target, i.in_function) for i in fine["superintendent.q.b"].imports] == [
        ("os", False), ("typing", False), ("json", True)]  # the TYPE_CHECKING import is left out

    deferred = _fake({**{str(m.path.relative_to(ROOT)): "" for m in fine.values()},
                      "superintendent/q/__init__.py": "from superintendent.q.a import f\n",
                      "superintendent/q/a.py": "def f():\n    from superintendent.q import g\n"})
    assert strongly_connected(import_graph(deferred)) == [["superintendent.q", "superintendent.q.a"]]  # a deferred import still counts

    bad = _fake({**{str(m.path.relative_to(ROOT)): "" for m in fine.values()},
                 "superintendent/q/__init__.py": "from superintendent.q.a import f\n",
                 "superintendent/q/a.py": "from ..q import helper\n"})
    graph = import_graph(bad)
    assert strongly_connected(graph) == [["superintendent.q", "superintendent.q.a"]]
    assert a_cycle(graph, ["superintendent.q", "superintendent.q.a"]) == ["superintendent.q", "superintendent.q.a", "superintendent.q"]


@pytest.mark.parametrize(("module", "level", "target", "expected"), [
    ("superintendent.q.a", 1, "b", "superintendent.q.b"),
    ("superintendent.q.a", 1, None, "superintendent.q"),
    ("superintendent.q.a", 2, "store", "superintendent.store"),
    ("superintendent.q", 1, "a", "superintendent.q.a"),  # in a package's __init__, "." is the package itself
])
def test_relative_imports_resolve(module, level, target, expected):
    node = ast.ImportFrom(module=target, names=[ast.alias("x")], level=level)
    assert _absolute(node, module, module == "superintendent.q") == expected
