"""The project's files agree with each other: pins, assets, notebooks, README."""

import re
from pathlib import Path

import pytest
import tomllib
import yaml

from course_lib.assets.packages import ASSET_PACKAGES
from course_lib.core.paths import REPO_ROOT
from course_lib.lessons.copies import copied_functions
from course_lib.lessons.notebooks import lesson_paths, problems


def _pins(lines: list[str]) -> dict[str, str]:
    """{'name': 'version'} for every 'name==version' requirement line."""
    found = {}
    for line in lines:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s;#]+)\s*", line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return _pins(project["dependencies"] + project["optional-dependencies"]["dev"])


def _makefile_torch_pin() -> dict[str, str]:
    return _pins(re.findall(r"^TORCH_SPEC \?= (.+)$", (REPO_ROOT / "Makefile").read_text(), re.M))


def test_environment_yml_has_the_same_pins_as_pyproject_and_makefile() -> None:
    environment = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == _pyproject_pins() | _makefile_torch_pin()


def test_torch_is_pinned_to_the_cpu_wheel_version() -> None:
    assert _makefile_torch_pin() == {"torch": "2.13.0"}


def test_constraints_agree_with_pyproject() -> None:
    constraints = _pins((REPO_ROOT / "constraints.txt").read_text().splitlines())
    disagreements = {name: (version, constraints.get(name)) for name, version in _pyproject_pins().items()
                     if constraints.get(name) != version}
    assert not disagreements, f"run `make freeze` after changing pyproject.toml: {disagreements}"
    assert "torch" not in constraints and not set(constraints) & set(ASSET_PACKAGES)


def test_asset_requirements_match_the_registry() -> None:
    pinned = _pins((REPO_ROOT / "requirements-assets.txt").read_text().splitlines())
    assert pinned == {p.distribution: p.version for p in ASSET_PACKAGES.values()}


@pytest.mark.parametrize("path", lesson_paths(), ids=lambda p: p.name)
def test_committed_notebook_is_clean_and_in_sync(path: Path) -> None:
    assert problems(path) == []


def test_a_lesson_that_frees_a_model_by_hand_is_caught(tmp_path: Path) -> None:
    import nbformat

    lesson = tmp_path / lesson_paths()[5].name
    notebook = nbformat.read(lesson_paths()[5], as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("del model\ngc.collect()"))
    nbformat.write(notebook, lesson)
    assert problems(lesson) == [f"cell {len(notebook.cells) - 1} frees memory by hand (gc.collect): hold the model "
                                "with course_lib.core.memory.held or give it back with free_models"]


def test_no_lesson_defines_a_function_the_library_or_another_lesson_has() -> None:
    assert copied_functions(lesson_paths(), REPO_ROOT / "course_lib", REPO_ROOT) == []


def test_a_function_copied_into_a_lesson_is_caught(tmp_path: Path) -> None:
    """A library function pasted into a lesson under another name, its docstring and layout changed, and a helper
    pasted into two lessons: both are found; an exercise solution equal to the library's is not."""
    import nbformat

    library = tmp_path / "course_lib"
    library.mkdir()
    (library / "scoring.py").write_text(
        'def says(answer: str, fact: str) -> bool:\n    """Whether the answer states the fact."""\n'
        '    return " ".join(fact.casefold().split()) in " ".join(answer.casefold().split())\n')
    pasted = ("def states(reply, wanted):\n    # pasted\n    return (\" \".join(wanted.casefold().split())\n"
              "            in \" \".join(reply.casefold().split()))")
    helper = "def mean_tokens(texts):\n    return np.mean([len(tokenizer(text)['input_ids']) for text in texts])"
    solution = ("def my_says(answer, fact):\n    ### BEGIN SOLUTION\n    return \" \".join(fact.casefold().split()) in "
                "\" \".join(answer.casefold().split())\n    ### END SOLUTION")
    lessons = []
    for name, cells in (("00_a.ipynb", [solution, pasted, helper]), ("01_b.ipynb", ["%matplotlib inline", helper])):
        lessons.append(tmp_path / name)
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), lessons[-1])
    assert copied_functions(lessons, library, tmp_path) == [
        "00_a.ipynb cell 1: `states` is a copy of `says` in course_lib/scoring.py: import it from there",
        "01_b.ipynb cell 1: `mean_tokens` is a copy of `mean_tokens` in 00_a.ipynb cell 2: move it into course_lib and "
        "import it in both"]


def test_readme_lists_every_lesson() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [p.name for p in lesson_paths() if p.name not in readme]
    assert not missing, f"add these lessons to the README's table: {missing}"


def _readme_file_map() -> set[str]:
    """The paths the README's layout block lists under course_lib/ ('core/paths.py', 'eval/metric_modules/')."""
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    listed, package = set(), None
    for line in block.splitlines():
        match = re.match(r"^  (\w+/)\s", line)
        if match:
            package = match.group(1)
            listed.add(package)
        match = re.match(r"^    (\w+(?:\.py|/))\s+\S", line)
        if match:
            listed.add(package + match.group(1))
    return listed


def test_readme_layout_lists_every_package_and_module_of_course_lib() -> None:
    root = REPO_ROOT / "course_lib"
    actual = {f"{p.parent.relative_to(root)}/" for p in root.glob("*/__init__.py")}
    actual |= {str(p.relative_to(root)) for p in root.glob("*/*.py") if p.name != "__init__.py"}
    actual |= {f"{p.relative_to(root)}/" for p in root.glob("*/*") if p.is_dir() and p.name != "__pycache__"}
    listed = _readme_file_map()
    assert not actual - listed, f"add to the README's layout: {sorted(actual - listed)}"
    assert not listed - actual, f"remove from the README's layout (no such file): {sorted(listed - actual)}"


def test_curriculum_lists_every_lesson() -> None:
    curriculum = (REPO_ROOT / "docs" / "curriculum.md").read_text()
    missing = [p.name for p in lesson_paths() if f"| {p.name[:2]} |" not in curriculum]
    assert not missing, f"add these lessons to docs/curriculum.md: {missing}"


UNREACHABLE = re.compile(r"seed text|seeds/|seed's|shared/|COURSE_DESIGN|Portuguese source", re.I)


def test_nothing_a_reader_gets_points_to_material_they_cannot_open() -> None:
    readable = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), *lesson_paths(),
                *sorted((REPO_ROOT / "student").glob("*.ipynb"))]
    pointers = [f"{path.relative_to(REPO_ROOT)}: {match.group(0)!r}" for path in readable
                for match in UNREACHABLE.finditer(path.read_text(encoding="utf-8"))]
    assert not pointers, f"cite sources a reader can open (docs/curriculum.md lists them): {pointers}"
