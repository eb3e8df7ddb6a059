"""The import-graph reader: edges, closures, and the violations the architecture test must catch."""

import shutil
from pathlib import Path

import pytest

from course_lib.core.imports import PACKAGE_ROOT, course_imports, import_closure, import_cycles, layer_violations


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of course_lib's source to plant bad imports in."""
    root = tmp_path / "course_lib"
    shutil.copytree(PACKAGE_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _plant(root: Path, module: str, code: str) -> None:
    path = root.joinpath(*module.split(".")[1:]).with_suffix(".py")
    path.write_text(path.read_text() + "\n" + code + "\n")


def test_the_real_package_is_clean() -> None:
    assert layer_violations(course_imports()) == []


def test_an_upward_import_is_caught(package_copy: Path) -> None:
    _plant(package_copy, "course_lib.model.attention", "from course_lib.train.sft import fine_tune")
    problems = layer_violations(course_imports(package_copy))
    assert len(problems) == 1
    assert "course_lib.model.attention line" in problems[0] and "up the layers (model is level 2, train level 5)" in problems[0]


def test_a_sibling_import_is_caught(package_copy: Path) -> None:
    _plant(package_copy, "course_lib.train.pretraining", "import course_lib.eval.metrics")
    assert ["sideways to a sibling" in p for p in layer_violations(course_imports(package_copy))] == [True]


def test_an_import_inside_a_function_is_caught(package_copy: Path) -> None:
    _plant(package_copy, "course_lib.infer.chat", "def late():\n    from course_lib.core.paths import data_dir\n    return data_dir()")
    problems = layer_violations(course_imports(package_copy))
    assert len(problems) == 1 and "inside a function" in problems[0]


def test_a_cycle_is_found(package_copy: Path) -> None:
    _plant(package_copy, "course_lib.core.paths", "from course_lib.core.builds import build_atomically")
    _plant(package_copy, "course_lib.core.builds", "from course_lib.core.paths import cache_dir")
    cycles = import_cycles(course_imports(package_copy))
    assert cycles and set(cycles[0]) == {"course_lib.core.paths", "course_lib.core.builds"}


def test_a_relative_import_is_refused_with_its_file(package_copy: Path) -> None:
    _plant(package_copy, "course_lib.core.paths", "from .builds import build_atomically")
    with pytest.raises(ValueError, match=r"paths\.py: relative import at line \d+"):
        course_imports(package_copy)


def test_the_closure_follows_imports_transitively() -> None:
    closure = import_closure("course_lib.model.decoder")
    assert closure == ["course_lib.model.attention", "course_lib.model.decoder", "course_lib.model.positions"]
    assert "course_lib.infer.chat" in import_closure("course_lib.recipes.sft")
    with pytest.raises(ValueError, match="No module 'course_lib.nowhere'"):
        import_closure("course_lib.nowhere")
