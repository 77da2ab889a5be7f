"""The package's import graph by unit (a top-level module, or a subpackage as a
whole): floors (a unit stands one floor above the highest unit it imports),
arrows, cycles and sizes. Used for the architecture's notes and checked by
tests/test_layering.py (no cycle between units).

    python tools/import_graph.py [--root .] [--package aidge_incremental] [--lazy]

``--lazy`` also counts imports made inside functions (they are arrows too, but
load only when called).
"""
from __future__ import annotations

import argparse
import ast
import pathlib
import sys
from typing import Dict, Set, Tuple

ROOT = pathlib.Path.cwd()


MODULES = False  #: --modules: every module is its own unit


def unit_of(module: str, package: str) -> str:
    """'aidge_incremental.methods.components.replay' -> 'methods' (or, with
    --modules, 'methods.components.replay')."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return ".".join(parts[1:]) if MODULES else parts[1]


def module_name(path: pathlib.Path, package_dir: pathlib.Path, package: str) -> str:
    rel = path.relative_to(package_dir).with_suffix("")
    parts = [package] + list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: pathlib.Path, module: str, package: str, lazy: bool):
    """(imported module, is_lazy) for every import of the package in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    top_level = {id(n) for n in tree.body}
    typing_only = {id(sub) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in
                   ast.unparse(node.test) for sub in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: not an import at run time
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = base[:len(base) - node.level + 1] + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            names = [".".join(target)]
            if not node.module or node.level:  # "from . import x" imports submodules too
                names += [".".join(target + [a.name]) for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        nested = id(node) not in top_level and not _in_module_scope(tree, node)
        for name in names:
            if name.split(".")[0] == package and name != module:
                if nested and not lazy:
                    continue
                found.append((name, nested))
    return found


def _in_module_scope(tree, target) -> bool:
    """Whether ``target`` runs at import time (module body, including if/try blocks)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if node is target:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if isinstance(node, ast.ClassDef):
                stack.extend(node.body)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def _existing(name: str, root: pathlib.Path) -> str:
    """The longest prefix of a dotted name that is a module or package of the tree
    (``from .. import __version__`` imports a name, not a module)."""
    parts = name.split(".")
    while len(parts) > 1:
        path = root.joinpath(*parts)
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() or \
                any(path.parent.glob(parts[-1] + ".*.so")):
            break
        parts.pop()
    return ".".join(parts)


def graph(package: str = "aidge_incremental", lazy: bool = False, root: pathlib.Path = ROOT):
    package_dir = root / package
    arrows: Dict[str, Set[str]] = {}
    sizes: Dict[str, int] = {}
    for path in sorted(package_dir.rglob("*.py")):
        module = module_name(path, package_dir, package)
        unit = unit_of(module, package)
        sizes[unit] = sizes.get(unit, 0) + len(path.read_text(encoding="utf-8").splitlines())
        arrows.setdefault(unit, set())
        for target, _ in imports_of(path, module, package, lazy):
            other = unit_of(_existing(target, root), package)
            if other not in (unit, "__init__", "_core") and not other.endswith(".__init__"):
                arrows[unit].add(other)
    arrows.pop("__init__", None)  # the package's lazy name table reaches everything by design
    for targets in arrows.values():
        targets.discard("__init__")
    return arrows, sizes


def floors(arrows: Dict[str, Set[str]]) -> Tuple[Dict[str, int], list]:
    """Floor of each unit, and the cycles found (as lists of units)."""
    floor: Dict[str, int] = {}
    cycles, active = [], []

    def visit(unit):
        if unit in floor:
            return floor[unit]
        if unit in active:
            cycles.append(active[active.index(unit):] + [unit])
            return 0
        active.append(unit)
        below = [visit(u) for u in arrows.get(unit, ()) if u in arrows]
        active.pop()
        floor[unit] = 1 + max(below) if below else 0
        return floor[unit]

    for unit in sorted(arrows):
        visit(unit)
    return floor, cycles


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="the repository root (default: here)")
    parser.add_argument("--package", default="aidge_incremental")
    parser.add_argument("--lazy", action="store_true", help="count imports inside functions too")
    parser.add_argument("--modules", action="store_true", help="one unit per module, not per subpackage")
    args = parser.parse_args(argv)
    global MODULES
    MODULES = args.modules
    arrows, sizes = graph(args.package, args.lazy, pathlib.Path(args.root).resolve())
    floor, cycles = floors(arrows)
    print(f"{len(set(floor.values()))} floors, {sum(len(t) for t in arrows.values())} arrows, "
          f"{len(cycles)} cycles{' (imports inside functions counted)' if args.lazy else ''}")
    for level in sorted(set(floor.values())):
        units = sorted(u for u, f in floor.items() if f == level)
        print(f"floor {level}: " + ", ".join(f"{u} ({sizes.get(u, 0)} lines) -> "
                                              f"{{{', '.join(sorted(arrows[u])) or '-'}}}" for u in units))
    for cycle in cycles:
        print("cycle: " + " -> ".join(cycle))
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
