"""The student edition, written from the instructor's notebooks with nbgrader.

The lessons in notebooks/ are the single source and the instructor edition.
Solutions sit between nbgrader's markers, ``### BEGIN SOLUTION`` and
``### END SOLUTION``; nbgrader's ClearSolutions preprocessor replaces each
region by ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` and leaves
every other line, cell and cell id as it was. ``write`` (``make student``)
writes student/NN_….ipynb, committed so that the badges can open it;
``check`` fails when a committed student notebook is not what ``write`` would
write, or when a lesson's exercises break the house rules below.

Coding exercises are code cells tagged ``exercise``: self-contained (they
import what they use from course_lib), so a test can run each one alone in
both editions. Every lesson has at least two, and every exercise names its
level on its first line: ``# Exercise 1 (easy): …``.
"""

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.preprocessors import ClearSolutions

from course_lib.core.paths import REPO_ROOT
from course_lib.lessons.notebooks import lesson_paths

STUDENT_DIR = REPO_ROOT / "student"
EXERCISE_TAG = "exercise"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
MIN_CODING_EXERCISES = 2
EXERCISE_HEADER = re.compile(r"^# Exercise \d+ \((easy|medium|hard)\): ")


def student_edition(notebook: Any) -> Any:
    """A copy of an instructor notebook with every solution region replaced by nbgrader's stub."""
    student, _ = ClearSolutions(enforce_metadata=False).preprocess(nbformat.from_dict(notebook), {})
    return student


def student_path(path: Path, student_dir: Path = STUDENT_DIR) -> Path:
    """Where the student edition of a lesson lives: student/<same name>."""
    return student_dir / path.name


def student_text(path: Path) -> str:
    """The student edition of a lesson file, as the text ``write`` puts on disk."""
    return nbformat.writes(student_edition(nbformat.read(path, as_version=4))) + "\n"


def exercise_cells(notebook: Any) -> list[Any]:
    """The coding-exercise cells (tagged ``exercise``) of a notebook, in order."""
    return [cell for cell in notebook.cells if EXERCISE_TAG in cell.get("metadata", {}).get("tags", [])]


def exercise_problems(notebook: Any) -> list[str]:
    """Why a lesson's exercises break the rules: too few coding exercises, no level, no solution or no check."""
    found = []
    coding = exercise_cells(notebook)
    if len(coding) < MIN_CODING_EXERCISES:
        found.append(f"has {len(coding)} coding exercise(s) (cells tagged '{EXERCISE_TAG}'), needs {MIN_CODING_EXERCISES}")
    for cell in coding:
        if BEGIN_SOLUTION not in cell.source or "check_function(" not in cell.source:
            found.append(f"exercise cell {cell.id} needs a solution region and a check_function call")
    for cell in notebook.cells:
        starts = [line for line in cell.source.splitlines() if line.startswith("# Exercise")]
        if cell.cell_type == "code" and any(not EXERCISE_HEADER.match(line) for line in starts):
            found.append(f"cell {cell.id}: an exercise's first line reads '# Exercise N (easy|medium|hard): …'")
    return found


def edition_problems(path: Path, student_dir: Path = STUDENT_DIR) -> list[str]:
    """Why a lesson's exercises or its committed student edition are not right; empty when they are."""
    found = exercise_problems(nbformat.read(path, as_version=4))
    student = student_path(path, student_dir)
    if not student.exists() or student.read_text(encoding="utf-8") != student_text(path):
        found.append(f"{student.relative_to(student_dir.parent)} is missing or out of date (run `make student`)")
    return found


def write_student_edition(path: Path, student_dir: Path = STUDENT_DIR) -> Path:
    """Write the student edition of one lesson; returns its path."""
    student_dir.mkdir(parents=True, exist_ok=True)
    target = student_path(path, student_dir)
    target.write_text(student_text(path), encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["write", "check"],
                        help="write: the student edition into student/; check: fail if it or the exercises are wrong")
    args = parser.parse_args(argv)
    if args.command == "write":
        for path in lesson_paths():
            print(f"wrote {write_student_edition(path).relative_to(REPO_ROOT)}")
        return 0
    found = {path: edition_problems(path) for path in lesson_paths()}
    for path, issues in found.items():
        for issue in issues:
            print(f"{path.relative_to(REPO_ROOT)}: {issue}")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
