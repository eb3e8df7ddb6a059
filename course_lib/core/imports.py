"""The import graph of course_lib, read from the source without importing anything.

Two uses: the architecture test checks that imports only point down the
layers (:data:`LAYERS`) and form no cycle, and cached artefacts are keyed on
the source of every module a recipe depends on (:func:`import_closure`), so
editing any of them builds a new artefact while an unrelated edit keeps it.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "course_lib"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent

# The concept subpackages, lowest first. A module may import from its own package and from any
# package of a lower level; packages that share a level are siblings and never import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("assets",),
    ("model", "data"),
    ("sakura",),
    ("infer",),
    ("train", "eval"),
    ("ship",),
    ("recipes",),
    ("pipeline", "bench"),
    ("lessons",),
)


@dataclass(frozen=True)
class Import:
    """One import of a course_lib module by another, where it is written and whether inside a function."""

    importer: str
    imported: str
    line: int
    in_function: bool


def module_files(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (``course_lib.core.paths``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((PACKAGE, *parts))] = path
    return modules


def _targets(node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> list[str]:
    """The course_lib modules an import statement loads (``from pkg import module`` names the module)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.level:
        raise ValueError(f"relative import at line {node.lineno}: write `from {PACKAGE}.… import …`")
    else:
        base = node.module or ""
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    return [name for name in names if name == PACKAGE or name.startswith(PACKAGE + ".")]


def _walk(tree: ast.AST, in_function: bool = False):
    """Every node with a flag that says whether it sits inside a function body."""
    for child in ast.iter_child_nodes(tree):
        inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield child, inside
        yield from _walk(child, inside)


def course_imports(root: Path = PACKAGE_ROOT) -> list[Import]:
    """Every import of one course_lib module by another, including those inside functions."""
    modules = module_files(root)
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, in_function in _walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                try:
                    targets = _targets(node, modules)
                except ValueError as error:
                    raise ValueError(f"{path}: {error}") from None
                found += [Import(name, target, node.lineno, in_function) for target in targets]
    return found


def import_closure(module: str, root: Path = PACKAGE_ROOT) -> list[str]:
    """``module`` and every course_lib module it imports, directly or indirectly, sorted."""
    edges: dict[str, set[str]] = {}
    for edge in course_imports(root):
        edges.setdefault(edge.importer, set()).add(edge.imported)
    if module not in module_files(root):
        raise ValueError(f"No module {module!r} under {root}.")
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += sorted(edges.get(current, ()))
    return sorted(seen)


def package_of(module: str) -> str:
    """The concept subpackage a module belongs to ('' for the top-level ``course_lib``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def level_of(package: str) -> int:
    """The layer index of a concept subpackage; an error names the known ones."""
    for level, packages in enumerate(LAYERS):
        if package in packages:
            return level
    known = ", ".join(p for layer in LAYERS for p in layer)
    raise ValueError(f"Package {package!r} is in no layer of course_lib.core.imports.LAYERS ({known}); add it there.")


def layer_violations(imports: list[Import]) -> list[str]:
    """Every import that points up or sideways in :data:`LAYERS`, or sits inside a function, as a sentence."""
    problems = []
    for edge in imports:
        where = f"{edge.importer} line {edge.line} imports {edge.imported}"
        if edge.in_function:
            problems.append(f"{where} inside a function: course_lib imports belong at the top of the module")
        source, target = package_of(edge.importer), package_of(edge.imported)
        if source == "":
            if target != "core":
                problems.append(f"{where}: the top-level package may only import course_lib.core")
        elif target == "":
            problems.append(f"{where}: import the concept module itself, not the top-level package")
        elif source != target and level_of(target) >= level_of(source):
            direction = "sideways to a sibling" if level_of(target) == level_of(source) else "up the layers"
            problems.append(f"{where}: {direction} ({source} is level {level_of(source)}, {target} level {level_of(target)})")
    return problems


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """The cycles of the module import graph, each as the modules along it (empty when there are none)."""
    edges: dict[str, set[str]] = {}
    for edge in imports:
        edges.setdefault(edge.importer, set()).add(edge.imported)
    cycles, state = [], {}  # state: 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    return cycles
