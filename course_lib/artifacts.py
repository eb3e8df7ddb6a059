"""Artefacts one lesson builds and another reuses (say, the fine-tuned model).

Every notebook must run on its own, in any order. When lesson 06 needs the
model lesson 05 trains, it calls :func:`cached_artifact` with the recipe's
config: on a miss the artefact is built (and written atomically), on a hit it
is reused. The key covers the config, the data files, the source of the
modules the recipe declares and the library versions, so a changed recipe
never reuses a stale result, while an unrelated edit keeps the cache.
"""

import hashlib
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from course_lib.cache import build_atomically
from course_lib.paths import cache_dir, data_dir

MANIFEST = "artifact.json"


def _hash_files(paths: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def environment_fingerprint(code: tuple[ModuleType, ...] = ()) -> dict[str, str]:
    """What, besides the config, decides an artefact: data, the recipe's code, library versions."""
    import torch
    import transformers

    data = data_dir()
    return {
        "data": _hash_files([p for p in data.glob("*") if p.suffix in (".json", ".jsonl")], data),
        **{module.__name__: hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest() for module in code},
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def artifact_key(config: dict[str, Any], code: tuple[ModuleType, ...] = ()) -> str:
    """A short hash of the config and the environment fingerprint."""
    payload = json.dumps({"config": config, "environment": environment_fingerprint(code)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cached_artifact(
    name: str, config: dict[str, Any], build: Callable[[Path], None], code: tuple[ModuleType, ...] = ()
) -> Path:
    """The folder of artefact ``name`` for ``config``, built by ``build(folder)`` on a cache miss.

    ``code`` lists the modules whose source the recipe depends on: editing one
    of them builds a new artefact.
    ``build`` writes into an empty staging folder; only a build that returns
    normally is moved into place, so an interrupted one leaves nothing behind.
    """
    target = cache_dir() / "artifacts" / f"{name}-{artifact_key(config, code)}"

    def build_with_manifest(staging: Path) -> None:
        print(f"Building {name} (not in the cache yet)...")
        started = time.perf_counter()
        build(staging)
        manifest = {"name": name, "config": config, "build_seconds": round(time.perf_counter() - started, 1)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))

    built = build_atomically(target, build_with_manifest, is_fresh=lambda folder: (folder / MANIFEST).exists())
    print(f"{'Built' if built else 'Reusing'} {name}: {target}")
    return target
