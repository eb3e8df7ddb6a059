"""The course-wide comparison table: every model the course builds, scored on the same test set.

Lessons add a row with :func:`record` (lesson 05 the base and fine-tuned
models, later lessons LoRA, DPO, quantized and distilled models); the
capstone reads them all with :func:`load`. Rows are keyed by model and
profile, so rerunning a lesson replaces its row instead of adding another.
From lesson 09 on, a score can be recorded with its confidence interval (an
:class:`~course_lib.eval.intervals.Estimate`); :func:`frame` shows it as
"value [low, high]".
"""

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from course_lib.core.paths import build_dir
from course_lib.eval.intervals import Estimate


def scoreboard_path() -> Path:
    """build/scoreboard.json (or under COURSE_BUILD_DIR)."""
    return build_dir() / "scoreboard.json"


def load() -> list[dict[str, Any]]:
    """All recorded rows, in the order they were first recorded."""
    path = scoreboard_path()
    return json.loads(path.read_text()) if path.exists() else []


def record(model: str, lesson: str, profile: str, scores: dict[str, float | Estimate]) -> None:
    """Add or replace the row of ``model`` under ``profile``; an Estimate is kept with its interval and n."""
    path = scoreboard_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        rows = load()
        row = {"model": model, "lesson": lesson, "profile": profile,
               **{name: asdict(value) if isinstance(value, Estimate) else value for name, value in scores.items()}}
        keys = [(r["model"], r["profile"]) for r in rows]
        if (model, profile) in keys:
            rows[keys.index((model, profile))] = row
        else:
            rows.append(row)
        path.write_text(json.dumps(rows, indent=2))


def shown(value: Any) -> Any:
    """A recorded score as a table shows it: "0.75 [0.41, 0.93]" for one with an interval, else unchanged."""
    if isinstance(value, dict) and {"value", "low", "high"} <= value.keys():
        return f"{value['value']:.2f} [{value['low']:.2f}, {value['high']:.2f}]"
    return value


def frame(profile: str | None = None) -> pd.DataFrame:
    """The scoreboard as a table, one row per model (of one profile if given), intervals shown."""
    rows = [row for row in load() if profile is None or row["profile"] == profile]
    return pd.DataFrame([{key: shown(value) for key, value in row.items()} for row in rows]).set_index("model")


COURSE_COLUMNS = {"fact_accuracy": "fact accuracy", "parameters_m": "parameters (M)", "memory_mb": "memory (MB)",
                  "tokens_per_second": "tokens per second"}
"""The scores every model of the course can be compared on, and their names in :func:`course_table`."""


def _value(score: Any) -> float:
    """A recorded score as a number: the point value of an interval, NaN where the lesson did not measure it."""
    if isinstance(score, dict):
        return float(score["value"])
    return float("nan") if score is None else float(score)


def course_table(profile: str | None = None) -> pd.DataFrame:
    """One row per recorded model, on the scores every lesson can report: fact accuracy (with its interval and n
    where the lesson measured one, from lesson 09 on), parameters, memory and speed; NaN where a lesson did not
    measure a score, so nothing unmeasured is filled in."""
    records = []
    for row in load():
        if profile is not None and row["profile"] != profile:
            continue
        accuracy = row.get("fact_accuracy")
        interval = accuracy if isinstance(accuracy, dict) else {}
        records.append({"model": row["model"], "lesson": row["lesson"],
                        **{label: _value(row.get(key)) for key, label in COURSE_COLUMNS.items()},
                        "low": interval.get("low", float("nan")), "high": interval.get("high", float("nan")),
                        "n": interval.get("n", float("nan"))})
    columns = ["model", "lesson", *COURSE_COLUMNS.values(), "low", "high", "n"]
    return pd.DataFrame(records, columns=columns).set_index("model")


def pareto_front(quality: list[float], cost: list[float]) -> list[bool]:
    """For each model, whether it is on the quality-cost front: no other model is at least as good and at most
    as costly while better on one of the two. Models with a NaN score are never on it."""
    measured = [(q, c) for q, c in zip(quality, cost) if not (math.isnan(q) or math.isnan(c))]

    def dominated(q: float, c: float) -> bool:
        return any(oq >= q and oc <= c and (oq > q or oc < c) for oq, oc in measured)

    return [not (math.isnan(q) or math.isnan(c)) and not dominated(q, c) for q, c in zip(quality, cost)]
