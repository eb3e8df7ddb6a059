"""The student edition: written by nbgrader, committed in sync, and every coding exercise's check is real."""

from pathlib import Path

import nbformat
import pytest

from course_lib.lessons.editions import (
    STUDENT_DIR, edition_problems, exercise_cells, exercise_problems, student_edition, student_path,
    write_student_edition,
)
from course_lib.lessons.notebooks import badge_markdown, lesson_paths

SOLVED = """# Exercise 1 (easy): double it.
from course_lib.core.exercises import check_function


def my_double(x: int) -> int:
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION


check_function("xx-double", my_double, lambda x: x + x, lambda rng: {"x": rng.randint(0, 9)})"""


def _notebook(*sources: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# A lesson", id="title")]
    notebook.cells += [nbformat.v4.new_code_cell(s, id=f"ex-{i}", metadata={"tags": ["exercise"]})
                       for i, s in enumerate(sources)]
    notebook.cells.append(nbformat.v4.new_code_cell("print('kept as it is')", id="plain"))
    return notebook


def test_student_edition_replaces_only_the_solution_region() -> None:
    instructor = _notebook(SOLVED, SOLVED)
    student = student_edition(instructor)
    assert "return 2 * x" in instructor.cells[1].source  # the instructor's copy is left alone
    assert student.cells[1].source == SOLVED.replace(
        "    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
        "    # YOUR CODE HERE\n    raise NotImplementedError()")
    assert [c.id for c in student.cells] == [c.id for c in instructor.cells]
    assert student.cells[0] == instructor.cells[0] and student.cells[-1] == instructor.cells[-1]


def test_exercise_rules_are_enforced() -> None:
    assert exercise_problems(_notebook(SOLVED, SOLVED)) == []
    assert any("has 1 coding exercise" in p for p in exercise_problems(_notebook(SOLVED)))
    no_level = SOLVED.replace("(easy)", "")
    assert any("easy|medium|hard" in p for p in exercise_problems(_notebook(SOLVED, no_level)))
    no_solution = SOLVED.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
    assert any("needs a solution region" in p for p in exercise_problems(_notebook(SOLVED, no_solution)))


def test_a_stale_or_missing_student_edition_is_reported(tmp_path: Path) -> None:
    lesson = tmp_path / "notebooks" / "00_demo.ipynb"
    lesson.parent.mkdir()
    nbformat.write(_notebook(SOLVED, SOLVED), lesson)
    student_dir = tmp_path / "student"
    assert edition_problems(lesson, student_dir) == ["student/00_demo.ipynb is missing or out of date (run `make student`)"]
    written = write_student_edition(lesson, student_dir)
    assert written == student_path(lesson, student_dir) and edition_problems(lesson, student_dir) == []
    written.write_text(written.read_text().replace("YOUR CODE HERE", "an edit"))
    assert edition_problems(lesson, student_dir) != []


@pytest.mark.parametrize("path", lesson_paths(), ids=lambda p: p.stem)
def test_lesson_has_leveled_exercises_and_its_student_edition_is_committed_in_sync(path: Path) -> None:
    assert edition_problems(path) == []


def test_badges_open_both_editions() -> None:
    badges = badge_markdown("00_setup_and_tour.ipynb")
    assert "blob/main/notebooks/00_setup_and_tour.ipynb" in badges and "blob/main/student/00_setup_and_tour.ipynb" in badges
    assert badges.count("[![Open in Colab]") == badges.count("[![Open in Kaggle]") == 2


def _coding_exercises() -> list[tuple[Path, str]]:
    return [(path, cell.id) for path in lesson_paths() for cell in exercise_cells(nbformat.read(path, as_version=4))]


def _source(path: Path, cell_id: str) -> str:
    return next(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.id == cell_id)


@pytest.mark.parametrize("path, cell_id", _coding_exercises(), ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_coding_exercise_check_passes_with_the_solution_and_fails_on_the_placeholder(
    path: Path, cell_id: str, capsys: pytest.CaptureFixture
) -> None:
    """Each exercise cell runs alone, on a fresh namespace: the instructor's passes, the student's fails."""
    exec(compile(_source(path, cell_id), f"{path.name}:{cell_id}", "exec"), {"__name__": "__exercise__"})
    assert "correct on" in capsys.readouterr().out
    student = _source(STUDENT_DIR / path.name, cell_id)
    with pytest.raises(AssertionError, match="is not written yet"):
        exec(compile(student, f"student/{path.name}:{cell_id}", "exec"), {"__name__": "__exercise__"})
