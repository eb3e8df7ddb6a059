"""Artefacts one lesson builds and another reuses (say, the fine-tuned model).

Every notebook must run on its own, in any order. When a later lesson needs
the model lesson 05 trains, it calls the recipe, which calls
:func:`cached_artifact`: on a miss the artefact is built (and written
atomically), on a hit it is reused. The key is derived, never hand-listed:
the config, the data files, the source of every course_lib module the recipe
imports (directly or indirectly, from :func:`course_lib.core.imports.import_closure`),
and the versions of the libraries and asset packages the result depends on.
So a changed recipe never reuses a stale result, while an unrelated edit keeps the cache.

Each artefact folder carries a manifest of its files and is checked on every
use (:func:`course_lib.core.builds.build_atomically`): a damaged one is rebuilt.
A long build can keep work that must outlive an interruption (training
checkpoints) in its scratch folder, next to the artefact: a rerun after a
disconnect finds it there and resumes; it is removed once the artefact is complete.
"""

import hashlib
import importlib.metadata
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from course_lib.assets.packages import ASSET_PACKAGES
from course_lib.core.builds import build_atomically
from course_lib.core.imports import PACKAGE_ROOT, import_closure, module_files
from course_lib.core.paths import cache_dir, data_dir

ARTIFACT_INFO = "artifact.json"
# Third-party libraries whose version can change what a recipe builds.
LIBRARIES = ("torch", "transformers", "tokenizers", "trl", "peft", "datasets", "accelerate", "bitsandbytes")


def _hash_files(paths: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def code_fingerprint(recipe_module: str, root: Path = PACKAGE_ROOT) -> dict[str, str]:
    """A hash of the source of ``recipe_module`` and of every course_lib module it imports, by module name."""
    files = module_files(root)
    return {name: hashlib.sha256(files[name].read_bytes()).hexdigest() for name in import_closure(recipe_module, root)}


def environment_fingerprint(recipe_module: str, root: Path = PACKAGE_ROOT) -> dict[str, Any]:
    """What, besides the config, decides an artefact: data, the recipe's code, library and asset versions."""
    data = data_dir()
    return {
        "data": _hash_files([p for p in data.glob("*") if p.suffix in (".json", ".jsonl")], data),
        "code": code_fingerprint(recipe_module, root),
        "versions": {name: _installed_version(name) for name in (*LIBRARIES, *ASSET_PACKAGES)},
    }


def artifact_key(config: dict[str, Any], recipe_module: str, root: Path = PACKAGE_ROOT) -> str:
    """A short hash of the config and the environment fingerprint."""
    payload = {"config": config, "environment": environment_fingerprint(recipe_module, root)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def artifact_folder(name: str, config: dict[str, Any], recipe_module: str) -> Path:
    """Where artefact ``name`` built from ``config`` by ``recipe_module`` lives (built or not): the key is in its name."""
    return cache_dir() / "artifacts" / f"{name}-{artifact_key(config, recipe_module)}"


def cached_artifact(
    name: str, config: dict[str, Any], build: Callable[[Path, Path], None], recipe_module: str
) -> Path:
    """The folder of artefact ``name`` for ``config``, built by ``build(folder, scratch)`` on a cache miss.

    ``recipe_module`` is the dotted name of the module that defines the recipe
    (pass ``__name__``): its import closure decides the code part of the key.
    ``build`` writes into an empty staging folder; only a build that returns
    normally is moved into place, so an interrupted one leaves nothing behind
    there. ``scratch`` is a folder of the same key that survives an interrupted
    build (for checkpoints to resume from) and is removed once the artefact is complete.
    """
    target = artifact_folder(name, config, recipe_module)
    scratch = target.with_name(f"{target.name}.resume")

    def build_with_info(staging: Path) -> None:
        print(f"Building {name} (not in the cache yet)...")
        started = time.perf_counter()
        scratch.mkdir(exist_ok=True)
        build(staging, scratch)
        info = {"name": name, "config": config, "build_seconds": round(time.perf_counter() - started, 1)}
        (staging / ARTIFACT_INFO).write_text(json.dumps(info, indent=2, default=str))

    # The key in the folder's name decides freshness; the manifest build_atomically checks decides intactness.
    built = build_atomically(target, build_with_info, is_fresh=lambda folder: True)
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'Built' if built else 'Reusing'} {name}: {target}")
    return target
