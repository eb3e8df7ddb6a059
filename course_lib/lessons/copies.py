"""Functions a notebook defines that the library (or another notebook) already has: one concept, one home.

A lesson imports what ``course_lib`` provides instead of pasting it; a helper two lessons both need belongs in the
library. Two functions are copies when their bodies are the same code: the same statements after parsing, whatever
the names of the functions and their parameters, their docstrings, comments or layout. (``duplicates`` reads only ``.py`` files, so
this check reads the notebooks.) An exercise's solution is left out: it is written to match the library function
that ``check_function`` compares it with, and the student edition replaces it.
"""

import ast
import copy
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course_lib.core.paths import REPO_ROOT
from course_lib.lessons.editions import BEGIN_SOLUTION
from course_lib.lessons.notebooks import lesson_paths

# A body shorter than this (in characters of its parsed form) is too small to be a copy worth a home of its own:
# ``return x + 1`` (42 characters parsed) may well be written twice. The lessons' smallest function has 75.
SMALLEST_BODY = 60


@dataclass(frozen=True)
class Definition:
    """One function: where it is (``course_lib/eval/answers.py`` or ``notebooks/09_evaluation.ipynb cell 23``),
    its name, and its body's parsed form."""

    where: str
    name: str
    body: str


class _NumberedArguments(ast.NodeTransformer):
    """Renames a function's parameters by position (``answer, fact`` -> ``_0, _1``) inside its body."""

    def __init__(self, arguments: ast.arguments) -> None:
        every = [*arguments.posonlyargs, *arguments.args, arguments.vararg, *arguments.kwonlyargs, arguments.kwarg]
        self.numbers = {argument.arg: f"_{index}" for index, argument in enumerate(every) if argument is not None}

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(self.numbers.get(node.id, node.id), node.ctx)


def _body(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    statements = function.body
    if statements and isinstance(statements[0], ast.Expr) and isinstance(statements[0].value, ast.Constant) \
            and isinstance(statements[0].value.value, str):
        statements = statements[1:]  # the docstring
    renamed = _NumberedArguments(function.args)
    return "\n".join(ast.dump(renamed.visit(copy.deepcopy(statement)), annotate_fields=False)
                     for statement in statements)


def definitions(source: str, where: str) -> Iterator[Definition]:
    """Every function defined in ``source`` (nested ones and methods too) but exercise solutions, with its body's
    parsed form."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and BEGIN_SOLUTION not in (ast.get_source_segment(source, node) or ""):
            yield Definition(where, node.name, _body(node))


def notebook_definitions(path: Path, root: Path) -> Iterator[Definition]:
    """The functions a notebook's code cells define; a cell with IPython magics is skipped (it is not Python)."""
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        try:
            yield from definitions(cell.source, f"{path.relative_to(root)} cell {index}")
        except SyntaxError:
            continue


def copied_functions(notebooks: list[Path], library: Path, root: Path) -> list[str]:
    """Each function of a notebook whose body is a library function's (``library``'s ``.py`` files) or an earlier
    notebook's, as a line naming both and what to do; empty when there are none."""
    homes: dict[str, Definition] = {}
    for path in sorted(library.rglob("*.py")):
        for definition in definitions(path.read_text(), str(path.relative_to(root))):
            homes.setdefault(definition.body, definition)
    found = []
    for path in notebooks:
        for definition in notebook_definitions(path, root):
            if len(definition.body) < SMALLEST_BODY:
                continue
            home = homes.get(definition.body)
            if home is None:
                homes[definition.body] = definition
            elif home.where != definition.where:
                found.append(f"{definition.where}: `{definition.name}` is a copy of `{home.name}` in {home.where}: "
                             + ("import it from there" if home.where.endswith(".py") else
                                "move it into course_lib and import it in both"))
    return found


def main() -> int:
    """``python -m course_lib.lessons.copies``: print the lessons' copied functions; fail if there are any."""
    found = copied_functions(lesson_paths(), REPO_ROOT / "course_lib", REPO_ROOT)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
