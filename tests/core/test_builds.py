"""Cache folders: built atomically under a lock, checked against their manifest on every use, healed."""

import json
from pathlib import Path

import pytest

import course_lib.core.builds as builds
from course_lib.core.builds import (
    BUILD_LOG_VARIABLE, MANIFEST_FILE, CacheDamagedError, build_atomically, build_seconds, manifest_problems, sha256_of,
    write_manifest,
)

WEIGHTS = bytes(range(256)) * 64  # 16 KiB


class Builder:
    """A fake model build that counts its runs: weights and a tokenizer file."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, staging: Path) -> None:
        self.runs += 1
        (staging / "model.safetensors").write_bytes(WEIGHTS)
        (staging / "tokenizer").mkdir()
        (staging / "tokenizer" / "tokenizer.json").write_text('{"vocab": 3}')


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Builder]:
    target, builder = tmp_path / "model", Builder()
    assert build_atomically(target, builder, is_fresh=lambda folder: True) is True
    return target, builder


def test_manifest_records_every_file_with_size_and_hash(built: tuple[Path, Builder]) -> None:
    target, _ = built
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    assert manifest["format"] == builds.MANIFEST_FORMAT
    assert manifest["files"] == {
        "model.safetensors": {"size": len(WEIGHTS), "sha256": sha256_of(target / "model.safetensors")},
        "tokenizer/tokenizer.json": {"size": 12, "sha256": sha256_of(target / "tokenizer" / "tokenizer.json")},
    }
    assert manifest_problems(target) == []


def test_an_intact_folder_is_reused(built: tuple[Path, Builder]) -> None:
    target, builder = built
    assert build_atomically(target, builder, is_fresh=lambda folder: True) is False
    assert builder.runs == 1


def test_a_truncated_weights_file_is_rebuilt(built: tuple[Path, Builder], capsys: pytest.CaptureFixture) -> None:
    target, builder = built
    (target / "model.safetensors").write_bytes(WEIGHTS[:1000])  # a full disk or a cut copy
    assert manifest_problems(target) == [f"model.safetensors has 1000 bytes, the build wrote {len(WEIGHTS)}"]
    assert build_atomically(target, builder, is_fresh=lambda folder: True) is True
    assert builder.runs == 2 and (target / "model.safetensors").read_bytes() == WEIGHTS
    assert f"The cache folder {target} is damaged" in capsys.readouterr().out


def test_a_deleted_tokenizer_file_is_rebuilt(built: tuple[Path, Builder]) -> None:
    target, builder = built
    (target / "tokenizer" / "tokenizer.json").unlink()
    assert manifest_problems(target) == ["tokenizer/tokenizer.json is missing"]
    assert build_atomically(target, builder, is_fresh=lambda folder: True) is True
    assert builder.runs == 2 and manifest_problems(target) == []


def test_a_small_file_changed_in_place_is_caught_by_its_hash(built: tuple[Path, Builder]) -> None:
    target, _ = built
    (target / "tokenizer" / "tokenizer.json").write_text('{"vocab": 4}')  # same size, other bytes
    assert manifest_problems(target) == ["tokenizer/tokenizer.json has changed since the build (sha256 differs)"]


def test_a_big_file_is_checked_by_size_only(built: tuple[Path, Builder], monkeypatch: pytest.MonkeyPatch) -> None:
    target, _ = built
    monkeypatch.setattr(builds, "HASH_ON_USE_BELOW_BYTES", 1024)
    (target / "model.safetensors").write_bytes(bytes(len(WEIGHTS)))  # same size: not hashed on use
    assert manifest_problems(target) == []


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        ({"format": 0, "files": {}}, f"{MANIFEST_FILE} has format 0, this version reads format 1"),
        ({"files": {}}, f"{MANIFEST_FILE} has format None, this version reads format 1"),
        ("[1, 2", f"{MANIFEST_FILE} is not valid JSON"),
        (None, f"{MANIFEST_FILE} is missing"),  # a folder written before manifests, or by a cut copy
    ],
)
def test_a_manifest_of_another_format_rebuilds(built: tuple[Path, Builder], manifest, problem: str) -> None:
    target, builder = built
    path = target / MANIFEST_FILE
    if manifest is None:
        path.unlink()
    else:
        path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    assert manifest_problems(target) == [problem]
    assert build_atomically(target, builder, is_fresh=lambda folder: True) is True
    assert builder.runs == 2 and manifest_problems(target) == []


def test_a_damaged_folder_that_cannot_be_rebuilt_names_the_folder_and_the_command(
    built: tuple[Path, Builder]
) -> None:
    target, _ = built
    (target / "model.safetensors").write_bytes(b"")

    def no_space(staging: Path) -> None:
        raise OSError("No space left on device")

    with pytest.raises(CacheDamagedError) as raised:
        build_atomically(target, no_space, is_fresh=lambda folder: True)
    message = str(raised.value)
    assert str(target) in message and f"rm -rf '{target}'" in message and "No space left on device" in message
    assert manifest_problems(target) != []  # still damaged, so never reused: the next use tries again


def test_write_manifest_skips_an_old_manifest(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / MANIFEST_FILE).write_text("stale")
    write_manifest(tmp_path)
    assert list(json.loads((tmp_path / MANIFEST_FILE).read_text())["files"]) == ["a.txt"]


def test_build_atomically_leaves_nothing_when_the_build_fails(tmp_path: Path) -> None:
    target = tmp_path / "model"

    def broken(staging: Path) -> None:
        (staging / "half-written.bin").write_bytes(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_atomically(target, broken, is_fresh=lambda folder: True)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.lock"]


def test_build_atomically_rebuilds_only_stale_folders(tmp_path: Path) -> None:
    target, runs = tmp_path / "model", []

    def build(staging: Path) -> None:
        runs.append(1)
        (staging / "version").write_text(str(len(runs)))

    def fresh(folder: Path) -> bool:
        return (folder / "version").read_text() == "2"

    assert build_atomically(target, build, fresh) is True
    assert build_atomically(target, build, fresh) is True  # version 1 is stale: rebuilt
    assert build_atomically(target, build, fresh) is False
    assert (target / "version").read_text() == "2" and len(runs) == 2


def test_a_build_log_records_each_outer_build_and_reuse_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "builds.jsonl"
    monkeypatch.setenv(BUILD_LOG_VARIABLE, str(log))
    inner = tmp_path / "inner"

    def outer_build(staging: Path) -> None:  # a build that needs another cache folder (the base model, say)
        build_atomically(inner, lambda s: (s / "weights").write_text("w"), is_fresh=lambda folder: True)
        (staging / "model").write_text("m")

    for _ in range(2):
        build_atomically(tmp_path / "outer", outer_build, is_fresh=lambda folder: True)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["folder"], e["built"]) for e in entries] == [("outer", True), ("outer", False)]
    assert build_seconds(log) == pytest.approx(sum(e["seconds"] for e in entries))
    assert build_seconds(tmp_path / "absent.jsonl") == 0.0


def test_without_a_build_log_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BUILD_LOG_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    build_atomically(tmp_path / "folder", lambda s: (s / "f").write_text("x"), is_fresh=lambda folder: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "folder.lock"]
