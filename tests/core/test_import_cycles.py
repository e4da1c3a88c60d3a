"""No import cycle inside vaegui, and the layers import downwards only.

Read from the source with ``ast``, so nothing is imported. Every import counts, including those
inside functions (the lazy ones that keep start-up fast): a cycle through a lazy import is still
two modules that each need the other. An import names the module it imports, not the packages
above it (as import-linter's graph does), so ``gui.app`` importing ``cli.options`` is not an
import of ``cli/__init__.py``'s dispatcher.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vaegui"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str], root: Path = PACKAGE) -> set[str]:
    """The modules of ``known`` that ``path`` imports, at module level or in a function."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    paths = sorted(root.rglob("*.py"))
    known = {module_name(p, root) for p in paths}
    return {module_name(p, root): imports_of(p, known, root) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_inside_vaegui():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_app_imports_the_command_line_only_through_its_options():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("vaegui.gui"):
            wrong = {t for t in targets if t.startswith("vaegui.cli") and t != "vaegui.cli.options"}
            assert not wrong, f"{module} imports {sorted(wrong)}"
    assert {t for t in graph["vaegui.cli.options"] if not t.startswith("vaegui.core")} == set()


def test_the_cycle_finder_finds_a_lazy_cycle_through_relative_imports(tmp_path):
    """The checks above would pass vacuously if the graph missed imports: build the old
    cli <-> gui.app cycle (one side lazy, relative) and a `from . import x` edge."""
    root = tmp_path / "vaegui"
    (root / "gui").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "gui" / "__init__.py").write_text("")
    (root / "cli.py").write_text("def main():\n    from .gui.app import run\n    return run()\n")
    (root / "gui" / "app.py").write_text("from vaegui.cli import fail\nfrom . import palette\n")
    (root / "gui" / "palette.py").write_text("import numpy\n")
    graph = import_graph(root)
    assert graph["vaegui.gui.app"] == {"vaegui.cli", "vaegui.gui.palette"}
    assert find_cycle(graph) == ["vaegui.cli", "vaegui.gui.app", "vaegui.cli"]
    (root / "cli.py").write_text("def main():\n    return 0\n")
    assert find_cycle(import_graph(root)) is None


@pytest.mark.parametrize("module", ["vaegui.cli.train", "vaegui.cli.evaluate", "vaegui.cli.export", "vaegui.cli.sweep"])
def test_each_command_is_a_module_of_the_cli_package(module):
    from vaegui.cli import COMMANDS, command_modules

    assert tuple(command_modules()) == COMMANDS
    graph = import_graph()
    assert module in graph["vaegui.cli"]
    assert "vaegui.cli.options" in graph[module]
