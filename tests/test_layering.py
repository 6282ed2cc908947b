"""The package's layers import only downward, and no two modules import each other in a loop.

What is enforced, by reading the source (``ast``; nothing is imported):

- Every module of ``physicsml_like`` belongs to exactly one layer of :data:`LAYERS` (a new
  top-level module or package fails until it is placed). A module may import modules of its own
  layer and of the layers below it, never of a layer above.
- Every import counts: module level and inside functions and methods, ``import a.b``,
  ``from . import x`` (resolved to the submodule ``x`` when there is one, else to the package),
  ``from ..pkg.mod import name``, and ``importlib.import_module("...")`` with a literal name.
  Imports under ``if TYPE_CHECKING:`` must also point downward (an annotation names a dependency
  of the design), but they are left out of the cycle check because they never run.
- The graph of runtime imports between modules has no cycle, within a layer or across layers
  (across layers one is impossible once every edge points downward or sideways; within a layer a
  cycle is a defect too: it works only by the order in which the modules happen to load). A
  lazy import inside a function counts like any other: it is a dependency all the same.
- Extension points are not imports: a lower layer may name providers of a higher one as
  ``"module:attribute"`` strings that it resolves with importlib on first use (the family
  registry, ``training.extensions``), and the lazy ``__init__`` files of the package root and of
  ``models`` list their re-exports as module names; those strings are data, and the test does not
  follow them (tests/test_imports.py checks that each resolves).

``check_layering`` is the checker; the test runs it on the package and on a small broken package
written to a temporary folder (one upward import, one cycle) to show that it catches both.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "physicsml_like"

# Bottom to top. Names are relative to the package; "" is the package root (its __init__), a
# front door because it re-exports the public names of every layer (lazily, see its docstring).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # _lazy and _families hold import-on-first-use machinery and the families' names as strings
    ("leaves", ("_version", "_logging", "_lazy", "_families", "_files", "_allocator", "keys")),
    # errors re-exports ConfigError from config.base next to DataError, so it sits with config
    ("config", ("config", "errors")),
    # datasets is the bundled data (files and their readers): a data helper, it imports nothing
    # of the package
    ("data", ("data", "datasets")),
    ("nn", ("nn",)),
    ("targets", ("targets",)),
    ("training", ("training",)),
    ("models", ("models",)),
    ("variants", ("variants",)),
    ("pretrained", ("pretrained",)),
    # calculators is the older name of integrations, kept as a re-export for users' imports
    ("integrations", ("integrations", "calculators")),
    ("front doors", ("cli", "__main__", "sklearn", "plot", "")),
]

# Cycles that are known and accepted; each must still exist (the test says when one is gone, so
# that the entry is removed). None today.
KNOWN_CYCLES: set[frozenset[str]] = set()


@dataclass(frozen=True)
class Import:
    """One import statement of the package, resolved to a module of the package."""

    importer: str
    path: Path
    line: int
    imported: str
    type_only: bool

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}"


def package_modules(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under ``node``, with whether it sits under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, True
                yield from _walk(stmt, True)
            for stmt in child.orelse:
                yield stmt, type_only
                yield from _walk(stmt, type_only)
            continue
        yield child, type_only
        yield from _walk(child, type_only)


def _literal_import_module(node: ast.Call) -> str | None:
    """The name in ``importlib.import_module("a.b")`` (or ``import_module("a.b")``), if literal."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name != "import_module" or not node.args or not isinstance(node.args[0], ast.Constant):
        return None
    return node.args[0].value if isinstance(node.args[0].value, str) else None


def _targets(node: ast.AST, module: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    """The package modules one node imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        source = node.module or ""
        if node.level:
            base = module.split(".")
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            source = ".".join(base + ([node.module] if node.module else []))
        return [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
    if isinstance(node, ast.Call):
        name = _literal_import_module(node)
        return [name] if name else []
    return []


def collect_imports(package_dir: Path) -> tuple[dict[str, Path], list[Import]]:
    """The package's modules and every import between them."""
    known = package_modules(package_dir)
    found = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, type_only in _walk(tree):
            for target in _targets(node, module, path.name == "__init__.py", known):
                # ``import a.b.c`` of a name that is not a module (a typo, a removed module)
                # still names the closest module of the package it reaches
                while target and target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in known and target != module:
                    found.append(Import(module, path, getattr(node, "lineno", 0), target, type_only))
    return known, found


def layer_index(module: str, package: str, layers: Sequence[tuple[str, Sequence[str]]]) -> int | None:
    """The position in ``layers`` of ``module`` (``None`` when no layer claims it)."""
    relative = module[len(package) + 1 :] if module != package else ""
    for index, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if relative == prefix or (prefix and relative.startswith(prefix + ".")):
                return index
    return None


def _cycles(edges: dict[str, set[str]]) -> list[tuple[frozenset[str], list[str]]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [(frozenset(component), _one_cycle(component, edges)) for component in components]


def _one_cycle(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(edges.get(node, set()) & members):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    following.append(nxt)
        frontier = following
    return component  # unreachable for a strongly connected component


def check_layering(
    package_dir: Path, layers: Sequence[tuple[str, Sequence[str]]], known_cycles: Collection[frozenset[str]] = ()
) -> list[str]:
    """Every problem found: unplaced modules, upward imports, import cycles other than
    ``known_cycles`` (each given by its set of modules), and known cycles that are gone (empty:
    all good)."""
    package = package_dir.name
    known, imports = collect_imports(package_dir)
    problems = [
        f"{path}: module {module} belongs to no layer; add it to LAYERS"
        for module, path in known.items()
        if layer_index(module, package, layers) is None
    ]
    edges: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], Import] = {}
    for imp in dict.fromkeys(imports):  # one entry per line and module, however many names
        low, high = layer_index(imp.imported, package, layers), layer_index(imp.importer, package, layers)
        if low is not None and high is not None and low > high:
            problems.append(
                f"upward import: {imp} (layer {layers[high][0]!r} must not import layer {layers[low][0]!r})"
            )
        if not imp.type_only:
            edges.setdefault(imp.importer, set()).add(imp.imported)
            lines.setdefault((imp.importer, imp.imported), imp)
    found = _cycles(edges)
    for members, cycle in found:
        if members in known_cycles:
            continue
        steps = "\n    ".join(str(lines[a, b]) for a, b in pairwise(cycle))
        problems.append(f"import cycle {' -> '.join(cycle)}:\n    {steps}")
    gone = set(known_cycles) - {members for members, _ in found}
    problems += [f"known cycle {sorted(members)} is gone: remove it from the known cycles" for members in gone]
    return problems


def test_the_package_imports_only_downward_and_has_no_import_cycle() -> None:
    problems = check_layering(PACKAGE_DIR, LAYERS, KNOWN_CYCLES)
    assert not problems, "\n".join(problems)


def test_the_checker_sees_the_package() -> None:
    """Guards the checker itself: it must find the package's real imports, of every kind."""
    known, imports = collect_imports(PACKAGE_DIR)
    assert len(known) > 80
    found = {(i.importer, i.imported) for i in imports}
    # relative imports at module level (one and three dots), one inside a method, and a
    # ``from .. import keys`` that names a submodule
    assert ("physicsml_like.training.wrapper", "physicsml_like.training.module") in found
    assert ("physicsml_like.models.egnn.model", "physicsml_like.training.wrapper") in found
    assert ("physicsml_like.integrations.ase", "physicsml_like.training.wrapper") in found
    assert ("physicsml_like.training.wrapper", "physicsml_like.keys") in found
    assert any(i.type_only for i in imports)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


TOY_LAYERS = [("low", ("low",)), ("high", ("high", ""))]


def test_the_checker_catches_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "from .a import A\n",
        "pkg/low/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..high import H\n"
                        "class A:\n    pass\n",
        # the upward import hides inside a method
        "pkg/low/b.py": "class B:\n    def f(self):\n        from ..high.h import H\n        return H\n",
        # c and d import each other: c at module level, d lazily, through ``from . import``
        "pkg/low/c.py": "from .d import D\nC = 1\n",
        "pkg/low/d.py": "def D():\n    from . import c\n    return c.C\n",
        "pkg/high/__init__.py": "",
        "pkg/high/h.py": "import pkg.low.a\nimport importlib\nH = importlib.import_module('pkg.low.c')\n",
    })
    problems = check_layering(package, TOY_LAYERS)
    upward = [p for p in problems if p.startswith("upward import")]
    cycles = [p for p in problems if p.startswith("import cycle")]
    assert len(upward) == 2, problems
    lazy = next(p for p in upward if "b.py" in p)
    assert "b.py:3: pkg.low.b imports pkg.high.h" in lazy
    assert "layer 'low' must not import layer 'high'" in lazy
    typed = next(p for p in upward if "a.py" in p)  # a type-only import is still upward
    assert "a.py:3: pkg.low.a imports pkg.high " in typed
    assert len(cycles) == 1 and "pkg.low.c -> pkg.low.d -> pkg.low.c" in cycles[0], problems
    assert "d.py:2: pkg.low.d imports pkg.low.c" in cycles[0]
    assert len(problems) == 3
    # a known cycle is let through, and one that has gone is reported
    known = frozenset({"pkg.low.c", "pkg.low.d"})
    assert len(check_layering(package, TOY_LAYERS, {known})) == 2
    gone = check_layering(package, TOY_LAYERS, {known, frozenset({"pkg.low.a", "pkg.low.b"})})
    assert "known cycle ['pkg.low.a', 'pkg.low.b'] is gone" in gone[-1]
    # the literal importlib name counts as an import (downward here, so no problem)
    assert ("pkg.high.h", "pkg.low.c") in {(i.importer, i.imported) for i in collect_imports(package)[1]}


def test_the_checker_wants_every_module_placed(tmp_path: Path) -> None:
    package = _write(tmp_path, {"pkg/__init__.py": "", "pkg/low.py": "", "pkg/stray.py": "from . import low\n"})
    problems = check_layering(package, TOY_LAYERS)
    assert len(problems) == 1 and "module pkg.stray belongs to no layer" in problems[0]
