"""The package's shape, checked: what a newcomer is promised by the folder tree.

Every ``confluent_kafka`` import lives in ``consumer/kafka/`` (one place maps settings to
librdkafka); no module imports itself back through a cycle; modules and classes stay small
enough to read in one sitting. Imports under ``if TYPE_CHECKING:`` are not runtime edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import REPO

PACKAGE = REPO / "consumer"
MAX_MODULE_LINES = 250
MAX_CLASS_LINES = 150


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text(encoding="utf-8"))


def _runtime_imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    """Imported module names, skipping ``if TYPE_CHECKING:`` blocks and function bodies."""
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield prefix
            yield from (f"{prefix}.{alias.name}" for alias in node.names)


def _named(node: ast.AST) -> list[str]:
    """The modules an import statement names (anywhere, TYPE_CHECKING blocks included)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []


def test_confluent_kafka_is_imported_only_in_the_kafka_subpackage() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for name, path, tree in _modules()
        if not name.startswith("consumer.kafka")
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(
            imported.split(".")[0] == "confluent_kafka"
            for imported in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
        )
    ]
    assert not offenders, f"confluent_kafka imported outside consumer/kafka/: {offenders}"


def test_no_import_cycles() -> None:
    modules = {name: (path, tree) for name, path, tree in _modules()}
    graph = {
        name: {
            imported
            for imported in _runtime_imports(tree, name, path.name == "__init__.py")
            if imported in modules and imported != name
        }
        for name, (path, tree) in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_modules_and_classes_stay_small() -> None:
    too_long = []
    for _, path, tree in _modules():
        where = str(path.relative_to(REPO))
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{where}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    too_long.append(f"{where}: class {node.name} {size} lines")
    assert not too_long, "over the size limits:\n" + "\n".join(too_long)
