"""The project's files agree with each other: pins, assets, notebooks, README."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from course_lib.assets import ASSET_PACKAGES
from course_lib.notebooks import lesson_paths, problems
from course_lib.paths import REPO_ROOT


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


def test_readme_lists_every_lesson() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [p.name for p in lesson_paths() if p.name not in readme]
    assert not missing, f"add these lessons to the README's table: {missing}"
