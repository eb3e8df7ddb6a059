"""The course-wide comparison table: every model the course builds, scored on the same test set.

Lessons add a row with :func:`record` (lesson 05 the base and fine-tuned
models, later lessons LoRA, DPO, quantized and distilled models); the
capstone reads them all with :func:`load`. Rows are keyed by model and
profile, so rerunning a lesson replaces its row instead of adding another.
"""

import json
from pathlib import Path
from typing import Any

from filelock import FileLock

from course_lib.core.paths import build_dir


def scoreboard_path() -> Path:
    """build/scoreboard.json (or under COURSE_BUILD_DIR)."""
    return build_dir() / "scoreboard.json"


def load() -> list[dict[str, Any]]:
    """All recorded rows, in the order they were first recorded."""
    path = scoreboard_path()
    return json.loads(path.read_text()) if path.exists() else []


def record(model: str, lesson: str, profile: str, scores: dict[str, float]) -> None:
    """Add or replace the row of ``model`` under ``profile``."""
    path = scoreboard_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        rows = load()
        row = {"model": model, "lesson": lesson, "profile": profile, **scores}
        keys = [(r["model"], r["profile"]) for r in rows]
        if (model, profile) in keys:
            rows[keys.index((model, profile))] = row
        else:
            rows.append(row)
        path.write_text(json.dumps(rows, indent=2))
