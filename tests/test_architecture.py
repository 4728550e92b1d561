"""The structure stays: layers, no cycles, small modules and functions, no bare errors.

``lint-imports`` (run by ``tasks.py test``) enforces the layers contract in
``pyproject.toml``; these tests check what it does not, with the same tools a reader
would use (grimp for the import graph, radon for complexity).
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest
from radon.complexity import cc_visit

SRC = Path(__file__).resolve().parents[1] / "src" / "safemodel"
MODULES = sorted(SRC.rglob("*.py"))
MAX_LINES = 800
MAX_COMPLEXITY = 25
# Builtins a deliberate failure must not raise bare: errors.py offers a SafeModelError
# subclass that is also each of them (InvalidArgument is a ValueError, ...).
# (A KeyError from __getitem__ is the mapping protocol, not a failure, so it may stay.)
BARE = {"Exception", "ValueError", "TypeError", "RuntimeError", "AssertionError"}


def _relative(path: Path) -> str:
    return str(path.relative_to(SRC.parent))


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_no_module_is_over_800_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{_relative(path)} has {lines} lines; split it by concept."


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_no_function_is_over_complexity_25(path: Path) -> None:
    blocks = cc_visit(path.read_text(encoding="utf-8"))
    over = [f"{b.fullname} ({b.complexity})" for b in blocks if b.complexity > MAX_COMPLEXITY]
    assert not over, f"{_relative(path)}: {over}; split into steps."


def _bare_raises(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(target, ast.Name) and target.id in BARE:
            found.append(f"line {node.lineno}: raise {target.id}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_no_bare_builtin_error_is_raised(path: Path) -> None:
    found = _bare_raises(ast.parse(path.read_text(encoding="utf-8")))
    assert not found, (f"{_relative(path)}: {found}; raise a SafeModelError subclass "
                       "(InvalidArgument for arguments) instead.")


def test_the_bare_raise_check_can_fail() -> None:
    assert _bare_raises(ast.parse("raise ValueError('x')\nraise TypeError")) == [
        "line 1: raise ValueError", "line 2: raise TypeError"]
    assert _bare_raises(ast.parse("raise InvalidArgument('x')\nraise")) == []


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph("safemodel", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_cycle_check_can_fail() -> None:
    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=a, imported=b)
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]
