"""The engine's import graph: no circle, and no module imports the command line (`__main__`).

Every module of wanlora_engine is parsed with `ast` (nothing is imported); every import statement counts,
at the top of the file or inside a function, relative or absolute. A circle means a module is used as a
library by a module it uses; shared code belongs in a module of its own (encoding.py, devices.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE_PACKAGE = Path(__file__).resolve().parents[1] / "wanlora_engine"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The package's modules that `module` imports (`from . import x` names module x when x is one)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from x import y`: module x.y when there is one, else the name y of module x.
            names = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target
                     for alias in node.names]
        else:
            continue
        for name in names:
            # `import a.b.c` names module a.b.c; a name outside the package has no known prefix.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, for the package in folder `root`."""
    files = {module_name(root, path): path for path in sorted(root.rglob("*.py"))}
    known = set(files)
    return {name: imported_modules(ast.parse(path.read_text(encoding="utf-8"), str(path)), name,
                                   path.name == "__init__.py", known)
            for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return path[path.index(successor):] + [successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def imports_of_main(graph: dict[str, set[str]]) -> list[str]:
    return sorted(name for name, targets in graph.items() if any(t.endswith(".__main__") for t in targets))


def test_the_engine_has_no_import_circle_and_nothing_imports_main():
    graph = import_graph(ENGINE_PACKAGE)
    assert "wanlora_engine.stage" in graph["wanlora_engine.__main__"]  # the graph sees imports inside functions
    assert "wanlora_engine.evaluate.networks" in graph["wanlora_engine.evaluate.run"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])
    assert imports_of_main(graph) == []


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_circle_through_a_function_level_relative_import_is_found(tmp_path):
    package = write_package(tmp_path / "pkg", {
        "__init__.py": "",
        "a.py": "from .b import helper\n",
        "b.py": "def helper():\n    from .sub import c\n    return c\n",
        "sub/__init__.py": "",
        "sub/c.py": "import pkg.a\n",
        "d.py": "import os\nfrom pkg.sub import c\n",
    })
    graph = import_graph(package)
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.sub.c"}, "pkg.sub": set(),
                     "pkg.sub.c": {"pkg.a"}, "pkg.d": {"pkg.sub.c"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]


def test_no_circle_and_an_import_of_main_are_told_apart(tmp_path):
    package = write_package(tmp_path / "pkg", {
        "__init__.py": "__version__ = '1'\n",
        "__main__.py": "from .stage import run\n",
        "stage.py": "from . import __version__, tools\n",
        "tools.py": "",
        "sample.py": "def f():\n    from .__main__ import EXIT_OK\n",
    })
    graph = import_graph(package)
    assert graph["pkg.stage"] == {"pkg", "pkg.tools"}
    assert find_cycle(graph) is None
    assert imports_of_main(graph) == ["pkg.sample"]
