"""The course-wide comparison table."""

from pathlib import Path

import pytest

from course_lib.eval import scoreboard


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
    from course_lib.eval.intervals import Estimate

    scoreboard.record("sft", "09", "cpu", {"fact_accuracy": Estimate(0.75, 0.41, 0.93, 8), "prompt_tokens": 40})
    row = scoreboard.load()[0]
    assert row["fact_accuracy"] == {"value": 0.75, "low": 0.41, "high": 0.93, "n": 8}
    table = scoreboard.frame("cpu")
    assert table.loc["sft", "fact_accuracy"] == "0.75 [0.41, 0.93]" and table.loc["sft", "prompt_tokens"] == 40
