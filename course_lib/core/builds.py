"""Building cache folders safely: under a lock, atomically, only when needed, checked on every use.

Both the converted models and the artefacts lessons share go through
:func:`build_atomically`, so an interrupted build never leaves a half-written
folder that a later run would mistake for a good one, and two notebooks
running at once never build the same thing twice.

Every folder it builds carries a manifest of the files the build wrote (size
and sha256 of each). Each use checks it: sizes always, hashes of the files
small enough to hash in a blink (tokenizers, configs, histories). A folder
that no longer matches (a weights file truncated by a full disk, a deleted
tokenizer file, a manifest written by another version of this module) is
rebuilt under the same lock; when even that fails, the error names the folder
and the command that clears it.

Where the environment names a build log (:data:`BUILD_LOG_VARIABLE`, set by the lesson runner), every call appends
how long it waited for the lock and built: a lesson's time budget counts its own work, not the shared artefacts it
happened to be the first to need.
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

MANIFEST_FILE = "course_manifest.json"
# Bump when the manifest's layout changes: folders with another format are rebuilt.
MANIFEST_FORMAT = 1
# Files below this size are hashed on every use; larger ones (model weights) are checked by size.
HASH_ON_USE_BELOW_BYTES = 64 * 2**20
# The environment variable naming the JSON-lines file where builds are logged (unset: nothing is logged).
BUILD_LOG_VARIABLE = "COURSE_BUILD_LOG"
_open_builds = 0  # build_atomically calls under way in this process: a build inside a build is its parent's time


class CacheDamagedError(RuntimeError):
    """A cache folder that no longer matches its manifest and could not be rebuilt."""


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks so big weights files don't fill memory."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    """Record every file under ``folder`` (relative path, size, sha256) in its manifest."""
    files = {
        path.relative_to(folder).as_posix(): {"size": path.stat().st_size, "sha256": sha256_of(path)}
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_FILE
    }
    manifest = {"format": MANIFEST_FORMAT, "files": files}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))


def _read_manifest(folder: Path) -> dict[str, Any] | str:
    """The folder's manifest, or why there is no usable one."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return f"{MANIFEST_FILE} is missing"
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"{MANIFEST_FILE} is not valid JSON"
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        return f"{MANIFEST_FILE} has format {found!r}, this version reads format {MANIFEST_FORMAT}"
    return manifest


def manifest_problems(folder: Path) -> list[str]:
    """What no longer matches ``folder``'s manifest: [] when every recorded file is intact."""
    manifest = _read_manifest(folder)
    if isinstance(manifest, str):
        return [manifest]
    problems = []
    for name, recorded in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif (size := path.stat().st_size) != recorded["size"]:
            problems.append(f"{name} has {size} bytes, the build wrote {recorded['size']}")
        elif size < HASH_ON_USE_BELOW_BYTES and sha256_of(path) != recorded["sha256"]:
            problems.append(f"{name} has changed since the build (sha256 differs)")
    return problems


def build_atomically(target: Path, build: Callable[[Path], None], is_fresh: Callable[[Path], bool]) -> bool:
    """Make ``target`` intact and fresh, building it into a staging folder moved into place when needed.

    ``target`` is reused when it matches its manifest and ``is_fresh(target)``;
    otherwise ``build(staging)`` writes a new one, which gets its manifest and
    replaces the old folder only once complete. Returns True when it built,
    False when the existing folder was reused. Raises :class:`CacheDamagedError`
    when a damaged folder could not be rebuilt.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with _logged(target) as outcome, FileLock(str(target) + ".lock"):
        damage: list[str] = []
        if target.exists():
            damage = manifest_problems(target)
            if not damage and is_fresh(target):
                outcome["built"] = False
                return False
            if damage:
                print(f"The cache folder {target} is damaged ({'; '.join(damage)}): rebuilding it.")
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
            staging = Path(tmp) / target.name
            staging.mkdir()
            try:
                build(staging)
                write_manifest(staging)
            except Exception as error:
                if damage:
                    raise CacheDamagedError(
                        f"The cache folder {target} is damaged ({'; '.join(damage)}) and rebuilding it failed: "
                        f"{error}. Clear it with `rm -rf '{target}'`, free disk space if it is short, and rerun."
                    ) from error
                raise
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
    return True


@contextmanager
def _logged(target: Path) -> Iterator[dict[str, bool]]:
    """Time the block and, where :data:`BUILD_LOG_VARIABLE` names a file and this is not a nested build, append
    ``{"folder", "built", "seconds"}`` to it; the block sets ``built`` to False when it reused the folder."""
    global _open_builds
    outcome = {"built": True}
    started = time.perf_counter()
    _open_builds += 1
    try:
        yield outcome
    finally:
        _open_builds -= 1
        log = os.environ.get(BUILD_LOG_VARIABLE)
        if log and _open_builds == 0:
            entry = {"folder": target.name, "built": outcome["built"], "seconds": round(time.perf_counter() - started, 2)}
            with open(log, "a", encoding="utf-8") as file:
                file.write(json.dumps(entry) + "\n")


def build_seconds(log: Path) -> float:
    """The seconds a build log records (waiting for other processes' builds included); 0 when there is no log."""
    if not log.is_file():
        return 0.0
    return sum(json.loads(line)["seconds"] for line in log.read_text(encoding="utf-8").splitlines() if line.strip())
