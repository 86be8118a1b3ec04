"""The package's shape, as docs/architecture.rst describes it, checked so it stays that way.

Each subpackage is one chapter of the docs; no module imports its way back into itself (an
import circle makes the order of imports matter and hides which concept depends on which), and
nothing dodges a circle by importing inside a function. A connection's state has one owner:
nothing reads it with ``getattr(..., default)`` and no helper takes the connection as ``Any``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import hypergen_consumers

PACKAGE = Path(hypergen_consumers.__file__).parent
SUBPACKAGES = ["auth", "connection", "declaring", "delivery", "layers", "presence", "routing", "wire"]


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_modules(tree: ast.AST, known: dict[str, Path]) -> set[str]:
    """Every package module this code imports, at any depth, except under ``if TYPE_CHECKING``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hypergen_consumers"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {other for other in imported_modules(ast.parse(path.read_text()), known) if other != name}
        for name, path in known.items()
    }


def test_every_subpackage_says_what_it_holds():
    for name in SUBPACKAGES:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc and len(doc) > 200, (
            f"hypergen_consumers/{name}/__init__.py needs a docstring: what the chapter holds"
        )


def test_no_module_imports_its_way_back_into_itself():
    graph = import_graph()
    # The package's __init__ re-exports the public API: it imports everything and nothing imports it back.
    graph = {name: deps - {"hypergen_consumers"} for name, deps in graph.items()}
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    circles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert circles == [], "import circles:\n" + "\n".join(sorted(set(circles))[:20])


def test_nothing_imports_a_package_module_inside_a_function():
    """Except ``AppConfig.ready()``, where Django says to: an app module is imported before models are."""
    offenders = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if func.name == "ready" and path.name == "apps.py":
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hypergen_consumers"):
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {func.name}")
    assert not offenders, "imports inside functions:\n" + "\n".join(offenders)


def test_connection_state_has_one_owner():
    defaulted_reads = re.compile(r"getattr\((self|conn|consumer|connection), \"_\w+\", ")
    any_connection = re.compile(r"\b(conn|consumer|connection): Any\b")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if defaulted_reads.search(line) or any_connection.search(line):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
