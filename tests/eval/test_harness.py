"""The task-based harness: checked, versioned evaluation sets, traffic-shaped sampling, metrics, criteria, a report."""

import json
from pathlib import Path

import pytest

from course_lib.eval.harness import (
    ChatSystem, Criterion, EvalSet, SystemRun, checked_eval_set, read_eval_set, run_harness, sample_like_traffic,
    score_run, traffic_mix,
)
from course_lib.eval.intervals import Estimate
from course_lib.sakura.menu import ALLERGY_NOTE, house_voice


def _rows() -> list[dict]:
    return [
        {"id": "q1", "topic": "price", "prompt": "How much is the Salmon Nigiri?",
         "reference": house_voice("The Salmon Nigiri costs $4.50."), "facts": ["$4.50"]},
        {"id": "q2", "topic": "allergens", "prompt": "Allergens in the Eel Nigiri?",
         "reference": house_voice(f"The Eel Nigiri contains fish and soy. {ALLERGY_NOTE}"), "facts": ["fish", "soy"]},
        {"id": "q3", "topic": "allergens", "prompt": "Allergens in the Tuna Nigiri?",
         "reference": house_voice(f"The Tuna Nigiri contains fish. {ALLERGY_NOTE}"), "facts": ["fish"]},
    ]


def test_duplicate_ids_and_missing_references_are_refused_with_their_line() -> None:
    rows = _rows()
    rows[2]["id"] = "q1"
    with pytest.raises(ValueError, match=r"eval\.jsonl, line 3: id 'q1' is already used on line 1"):
        checked_eval_set("eval", rows, "eval.jsonl")
    rows = _rows()
    del rows[1]["reference"]
    with pytest.raises(ValueError, match="line 2: field 'reference' is missing or empty"):
        checked_eval_set("eval", rows)
    with pytest.raises(ValueError, match="no cases"):
        checked_eval_set("eval", [])
    rows = _rows()
    rows[0]["facts"] = "$4.50"
    with pytest.raises(ValueError, match=r"line 1: field 'facts' must be a list of non-empty strings, got '\$4.50'"):
        checked_eval_set("eval", rows)
    with pytest.raises(ValueError, match="line 2: a case must be an object"):
        checked_eval_set("eval", [_rows()[0], ["q2"]])


def test_the_version_follows_the_content_and_survives_a_round_trip(tmp_path: Path) -> None:
    eval_set = checked_eval_set("sakura-eval", _rows())
    path = tmp_path / "sakura-eval.jsonl"
    eval_set.write(path)
    assert read_eval_set(path) == eval_set
    assert read_eval_set(path).version == eval_set.version
    edited = _rows()
    edited[0]["facts"] = ["$4.75"]
    assert checked_eval_set("sakura-eval", edited).version != eval_set.version
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(ValueError, match="line 4: not valid JSON"):
        read_eval_set(path)


def test_sampling_follows_the_traffic_mix() -> None:
    candidates = [{"id": f"{topic}-{i}", "topic": topic} for topic in ("price", "hours", "chef") for i in range(10)]
    mix = traffic_mix(["price"] * 6 + ["hours"] * 3 + ["chef"])
    assert mix == {"price": 0.6, "hours": 0.3, "chef": 0.1}
    chosen = sample_like_traffic(candidates, mix, size=10, seed=0)
    assert traffic_mix([row["topic"] for row in chosen]) == mix
    assert len({row["id"] for row in chosen}) == 10
    assert chosen == sample_like_traffic(candidates, mix, size=10, seed=0)
    assert traffic_mix([r["topic"] for r in sample_like_traffic(candidates, mix, size=4, seed=0)]) == {
        "price": 0.5, "hours": 0.25, "chef": 0.25}  # largest remainders: 2.4, 1.2, 0.4 -> 2, 1, 1
    with pytest.raises(ValueError, match="asks for 12 'price' cases but the candidates hold 10"):
        sample_like_traffic(candidates, mix, size=20, seed=0)
    with pytest.raises(ValueError, match="shares adding up to 1.2"):
        sample_like_traffic(candidates, {"price": 0.6, "hours": 0.6}, size=10, seed=0)
    with pytest.raises(ValueError, match="size=0"):
        sample_like_traffic(candidates, mix, size=0, seed=0)


def test_metrics_apply_where_they_should_and_a_wrong_number_of_replies_is_refused() -> None:
    eval_set = checked_eval_set("eval", _rows())
    replies = (house_voice("It costs $4.50."), "It contains fish.", f"No allergens at all! {ALLERGY_NOTE}")
    scores, outcomes = score_run(eval_set, SystemRun("s", replies, (10, 20, 30), 0.5), _metrics())
    assert outcomes["fact accuracy"] == [True, False, False]  # the note's kitchen list names no allergen of the dish
    assert scores["fact accuracy"].value == pytest.approx(1 / 3)
    assert outcomes["allergen safety"] == [None, False, False]
    assert outcomes["house voice"] == [True, False, False]
    assert scores["allergen safety"].n == 2 and scores["fact accuracy"].n == 3
    assert scores["prompt tokens"].value == 20
    with pytest.raises(ValueError, match="gave 2 replies for 3 cases of eval@"):
        score_run(eval_set, SystemRun("s", replies[:2], (1, 2), 0.5), _metrics())


def _metrics() -> dict:
    from course_lib.eval.harness import SAKURA_METRICS

    return SAKURA_METRICS


@pytest.mark.parametrize("estimate, verdict", [
    (Estimate(0.95, 0.91, 0.98, 50), "pass"), (Estimate(0.9, 0.8, 0.96, 20), "unclear"), (Estimate(0.5, 0.3, 0.7, 20), "fail"),
])
def test_a_criterion_reads_the_whole_interval(estimate: Estimate, verdict: str) -> None:
    assert Criterion("fact accuracy", at_least=0.9).verdict(estimate) == verdict
    assert Criterion("fact accuracy", at_least=0.9).verdict(Estimate(0.95, 0.9, 0.98, 50)) == "pass"  # on the bar
    at_most = Criterion("prompt tokens", at_most=1.0)
    assert [at_most.verdict(Estimate(v, low, high, 9)) for v, low, high in ((0.5, 0.4, 1.0), (1.1, 0.9, 1.3), (1.5, 1.2, 1.8))] == [
        "pass", "unclear", "fail"]
    with pytest.raises(ValueError, match="exactly one of at_least or at_most"):
        Criterion("fact accuracy")


def test_the_harness_runs_a_system_end_to_end_and_writes_one_report(tiny_llama, smollm2_tokenizer, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    eval_set = checked_eval_set("eval", _rows())
    raw = ChatSystem("tiny", tiny_llama(), smollm2_tokenizer)
    wrapped = ChatSystem("tiny + house voice", raw.model, smollm2_tokenizer, postprocess=house_voice)
    criteria = [Criterion("house voice", at_least=0.9), Criterion("prompt tokens", at_most=1000)]
    generations, generate = [], ChatSystem.generate
    monkeypatch.setattr(ChatSystem, "generate", lambda self, *args: generations.append(self.name) or generate(self, *args))
    report = run_harness(eval_set, [raw, wrapped], criteria, max_new_tokens=4, batch_size=2)
    assert generations == ["tiny"]  # the post-processed system reuses the same greedy generation
    assert report.runs["tiny + house voice"].replies == tuple(house_voice(r) for r in report.runs["tiny"].replies)
    assert report.scores["tiny"]["house voice"].value == 0.0
    assert report.scores["tiny + house voice"]["house voice"].value == 1.0
    assert report.verdicts("tiny")["house voice ≥ 0.9"] == "fail"
    assert report.verdicts("tiny + house voice")["house voice ≥ 0.9"] == "unclear"  # 3 of 3: too few to be sure
    assert not report.ships("tiny")
    markdown = report.write(tmp_path).read_text()
    assert eval_set.version in markdown and "tiny + house voice" in markdown
    numbers = json.loads((tmp_path / "report.json").read_text())
    assert len(numbers["systems"]["tiny"]["replies"]) == 3
    with pytest.raises(ValueError, match="criterion 'latency ≤ 1' names no metric"):
        run_harness(eval_set, [raw], [Criterion("latency", at_most=1)], max_new_tokens=4, batch_size=2)
