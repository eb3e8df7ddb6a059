"""The course-wide comparison table."""

import math
from pathlib import Path

import pytest

from course_lib.eval import scoreboard
from course_lib.eval.intervals import Estimate


@pytest.fixture(autouse=True)
def _isolated_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_BUILD_DIR", str(tmp_path))


def test_rows_are_added_then_replaced_per_model_and_profile() -> None:
    assert scoreboard.load() == []
    scoreboard.record("base", "05", "cpu", {"fact_accuracy": 0.0})
    scoreboard.record("sft", "05", "cpu", {"fact_accuracy": 0.6})
    scoreboard.record("base", "05", "cpu", {"fact_accuracy": 0.05})
    scoreboard.record("base", "05", "gpu", {"fact_accuracy": 0.1})
    assert [(r["model"], r["profile"], r["fact_accuracy"]) for r in scoreboard.load()] == [
        ("base", "cpu", 0.05), ("sft", "cpu", 0.6), ("base", "gpu", 0.1),
    ]


def test_scores_with_intervals_are_kept_and_shown_as_intervals() -> None:

    scoreboard.record("sft", "09", "cpu", {"fact_accuracy": Estimate(0.75, 0.41, 0.93, 8), "prompt_tokens": 40})
    row = scoreboard.load()[0]
    assert row["fact_accuracy"] == {"value": 0.75, "low": 0.41, "high": 0.93, "n": 8}
    table = scoreboard.frame("cpu")
    assert table.loc["sft", "fact_accuracy"] == "0.75 [0.41, 0.93]" and table.loc["sft", "prompt_tokens"] == 40


def test_the_course_table_keeps_intervals_and_leaves_unmeasured_scores_empty() -> None:
    scoreboard.record("int4", lesson="10", profile="cpu", scores={"fact_accuracy": 0.5, "memory_mb": 120.0})
    scoreboard.record("student", lesson="11", profile="cpu", scores={
        "fact_accuracy": Estimate(0.25, 0.1, 0.45, 24), "memory_mb": 326.0, "tokens_per_second": 90.0})
    scoreboard.record("other profile", lesson="11", profile="gpu", scores={"fact_accuracy": 0.9})
    table = scoreboard.course_table("cpu")
    assert list(table.index) == ["int4", "student"]
    assert table.loc["student", ["fact accuracy", "low", "high", "n"]].tolist() == [0.25, 0.1, 0.45, 24]
    assert table.loc["int4", "fact accuracy"] == 0.5 and math.isnan(table.loc["int4", "low"])
    assert math.isnan(table.loc["int4", "tokens per second"]) and math.isnan(table.loc["int4", "parameters (M)"])


def test_the_pareto_front_keeps_models_no_other_beats_on_both_counts() -> None:
    quality = [0.5, 0.6, 0.4, 0.6, float("nan")]
    cost = [100.0, 300.0, 200.0, 400.0, 10.0]
    # 0.4 at 200 loses to 0.5 at 100; 0.6 at 400 loses to 0.6 at 300; NaN is never on the front.
    assert scoreboard.pareto_front(quality, cost) == [True, True, False, False, False]
