"""The pipeline's cache: a changed recipe rebuilds its stage and what depends on it, and nothing else."""

import json
from pathlib import Path

import pytest

from course_lib.pipeline.stages import Stage, downstream, ordered, plan, run_stages, stage_folders

MODULE = "course_lib.pipeline.stages"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))


def _writes_its_config(folder: Path, scratch: Path, inputs: dict[str, Path]) -> None:
    parts = [json.loads((path / "out.json").read_text()) for path in inputs.values()]
    (folder / "out.json").write_text(json.dumps(parts + [folder.name.rsplit("-", 1)[0]]))


def _stage(name: str, needs: tuple[str, ...] = (), **config: object) -> Stage:
    return Stage(name, needs, dict(config), _writes_its_config, MODULE)


def _diamond(recipe_of_b: int = 1) -> list[Stage]:
    # clean -> b -> ship and clean -> c -> ship, listed out of order on purpose.
    return [_stage("ship", ("b", "c")), _stage("c", ("clean",), steps=2), _stage("b", ("clean",), steps=recipe_of_b),
            _stage("clean", rows=10)]


def _statuses(stages: list[Stage]) -> dict[str, str]:
    return {run.name: run.status for run in run_stages(stages, progress=False)}


def test_stages_run_after_what_they_need() -> None:
    names = [stage.name for stage in ordered(_diamond())]
    assert names.index("clean") < names.index("b") < names.index("ship")
    assert names.index("c") < names.index("ship")


def test_first_run_builds_everything_and_the_second_reuses_everything() -> None:
    assert set(_statuses(_diamond()).values()) == {"built"}
    assert set(_statuses(_diamond()).values()) == {"reused"}
    assert set(plan(_diamond()).values()) == {"reuse"}


def test_a_changed_recipe_rebuilds_only_its_stage_and_what_depends_on_it() -> None:
    _statuses(_diamond())
    changed = _diamond(recipe_of_b=5)
    assert plan(changed) == {"clean": "reuse", "c": "reuse", "b": "build", "ship": "build"}
    assert downstream(changed, "b") == ["b", "ship"] and downstream(changed, "clean") == ["clean", "c", "b", "ship"]
    assert _statuses(changed) == {"clean": "reused", "c": "reused", "b": "built", "ship": "built"}
    before, after = stage_folders(_diamond()), stage_folders(changed)
    assert before["b"] != after["b"] and before["ship"] != after["ship"] and before["c"] == after["c"]


def test_a_missing_artefact_is_rebuilt() -> None:
    runs = {run.name: run for run in run_stages(_diamond(), progress=False)}
    for path in runs["c"].folder.iterdir():
        path.unlink()
    runs["c"].folder.rmdir()
    assert plan(_diamond())["c"] == "build"
    assert _statuses(_diamond()) == {"clean": "reused", "c": "built", "b": "reused", "ship": "reused"}


def test_a_damaged_artefact_is_rebuilt_not_reused() -> None:
    runs = {run.name: run for run in run_stages(_diamond(), progress=False)}
    (runs["b"].folder / "out.json").write_text("tampered")
    assert plan(_diamond())["b"] == "build"
    assert _statuses(_diamond())["b"] == "built"
    assert (runs["b"].folder / "out.json").read_text() != "tampered"


def test_each_stage_reads_the_folders_of_what_it_needs() -> None:
    runs = {run.name: run for run in run_stages(_diamond(), progress=False)}
    assert json.loads((runs["ship"].folder / "out.json").read_text()) == [[["clean"], "b"], [["clean"], "c"], "ship"]


def test_unknown_and_circular_needs_are_errors() -> None:
    with pytest.raises(ValueError, match="Stage 'b' needs \\['nothing'\\], which no stage builds"):
        ordered([_stage("b", ("nothing",))])
    with pytest.raises(ValueError, match="need each other in a circle"):
        ordered([_stage("a", ("b",)), _stage("b", ("a",))])
    with pytest.raises(ValueError, match="share a name"):
        ordered([_stage("a"), _stage("a")])
