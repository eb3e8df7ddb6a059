"""Artefacts shared between lessons: built on a miss, reused on a hit, never stale."""

from pathlib import Path

import pytest

from course_lib.artifacts import artifact_key, cached_artifact


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))


def test_built_once_then_reused() -> None:
    builds: list[Path] = []

    def build(folder: Path) -> None:
        builds.append(folder)
        (folder / "weights.txt").write_text("trained")

    first = cached_artifact("sft-model", {"lr": 1e-4, "steps": 30}, build)
    second = cached_artifact("sft-model", {"steps": 30, "lr": 1e-4}, build)
    assert first == second and len(builds) == 1
    assert (first / "weights.txt").read_text() == "trained"
    assert (first / "artifact.json").exists()


def test_a_changed_config_builds_a_new_artifact() -> None:
    assert artifact_key({"lr": 1e-4}) != artifact_key({"lr": 2e-4})


def test_changed_data_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(data))
    (data / "qa_train.jsonl").write_text('{"id": "1"}\n')
    before = artifact_key({"lr": 1e-4})
    (data / "qa_train.jsonl").write_text('{"id": "2"}\n')
    assert artifact_key({"lr": 1e-4}) != before


def test_failed_build_is_not_cached() -> None:
    def broken(folder: Path) -> None:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        cached_artifact("sft-model", {"lr": 1.0}, broken)
    calls = []
    cached_artifact("sft-model", {"lr": 1.0}, lambda folder: calls.append(folder))
    assert len(calls) == 1


def test_editing_a_declared_module_changes_the_key(tmp_path: Path) -> None:
    import types

    source = tmp_path / "recipe.py"
    module = types.ModuleType("recipe")
    module.__file__ = str(source)
    source.write_text("LEARNING_RATE = 1e-4\n")
    before = artifact_key({"steps": 3}, code=(module,))
    source.write_text("LEARNING_RATE = 2e-4\n")
    assert artifact_key({"steps": 3}, code=(module,)) != before
    assert artifact_key({"steps": 3}) == artifact_key({"steps": 3})
