"""Sakura Sushi's cleaning rules and the whole pipeline from raw logs to qa_train."""

import hashlib
import json
from collections import Counter
from typing import Any

import pytest
from log_rows import EVAL_PROMPTS, HOUSE_ANSWER, log_row, log_rows

from course_lib.data.cleaning import (
    PipelineReport,
    anonymize,
    anonymize_rows,
    filter_junk,
    junk_reason,
    missed_pii,
    normalize_rows,
)
from course_lib.data.dedup import (
    NEAR_DUPLICATE_THRESHOLD,
    nearest,
)
from course_lib.sakura.cleaning import JUNK_RULES, PUBLIC_FACTS, answer_key, prepare_training_set, structure
from course_lib.sakura.logs import LogBook, customer_log_book
from course_lib.sakura.menu import house_voice
from course_lib.sakura.questions import SPLITS, intent_rows, qa_rows


# SHA-256 of data/qa_train.jsonl as lesson 05 trains on it (512 rows): a change to any cleaning or
# deduplication step that alters the training set fails here, not silently in lesson 05's numbers.
QA_TRAIN_SHA256 = "68319fa2cf8168ab02102f62a3e27cdce5680a72d7a317b5b4378ad09a7ba8e3"


@pytest.fixture(scope="module")
def book() -> LogBook:
    return customer_log_book()


@pytest.fixture(scope="module")
def pipeline(book: LogBook) -> tuple[list[dict[str, Any]], PipelineReport]:
    return prepare_training_set(book.rows, EVAL_PROMPTS)


@pytest.mark.parametrize(
    ("message", "reply", "rule"),
    [
        ("   ", HOUSE_ANSWER, "empty message"),
        ("\U0001f363\U0001f363", HOUSE_ANSWER, "no letters"),
        ("???", HOUSE_ANSWER, "no letters"),
        ("Great deals at www.cheap.example", HOUSE_ANSWER, "spam"),
        ("Buy followers for your page", HOUSE_ANSWER, "spam"),
        ("asdfgh", HOUSE_ANSWER, "keyboard mash"),
        ("jjjjjjj", HOUSE_ANSWER, "keyboard mash"),
        ("Haben Sie heute geöffnet?", HOUSE_ANSWER, "not English"),
        ("\u55b6\u696d\u6642\u9593\u306f\uff1f", HOUSE_ANSWER, "not English"),
        ("Do you deliver?", "", "empty reply"),
        ("Do you deliver?", "idk, ask the kitchen", "off-voice reply"),
        ("Do you deliver?", "IRASSHAIMASE! Yes. ARIGATO.", "off-voice reply"),
        ("Do you deliver?", HOUSE_ANSWER, None),
        ("Price of the Salmon Nigiri?", HOUSE_ANSWER, None),
    ],
)
def test_junk_rules_name_what_they_catch(message: str, reply: str, rule: str | None) -> None:
    assert junk_reason(log_row(message, reply), JUNK_RULES) == rule


def test_no_clean_question_or_answer_is_junk() -> None:
    rows = [log_row(r["prompt"], r["completion"]) for split in SPLITS for r in qa_rows(split)]
    rows += [log_row(r["text"]) for r in intent_rows("train", per_template=2)]
    assert [junk_reason(row, JUNK_RULES) for row in rows] == [None] * len(rows)


def test_filter_junk_counts_drops_per_rule() -> None:
    kept, report = filter_junk(log_rows("Do you deliver?", "", "asdfgh", "qwerty"), JUNK_RULES)
    assert [r["message"] for r in kept] == ["Do you deliver?"]
    assert report.counts == Counter({"keyboard mash": 2, "empty message": 1})
    assert (report.rows_in, report.rows_out) == (4, 1)


def test_no_clean_question_or_answer_is_anonymized() -> None:
    texts = [r[f] for split in SPLITS for r in qa_rows(split) for f in ("prompt", "completion")]
    assert [t for t in texts if anonymize(t, PUBLIC_FACTS).found] == []


def test_anonymizer_catch_rate_on_the_generated_logs(book: LogBook) -> None:
    anonymized, _ = anonymize_rows(normalize_rows(book.rows)[0], PUBLIC_FACTS)
    missed = missed_pii(anonymized, book.pii)
    planted = Counter(item.kind for item in book.pii)
    caught = {kind: 1 - sum(m.kind == kind for m in missed) / n for kind, n in planted.items()}
    assert caught["email"] == caught["address"] == 1.0
    assert caught["phone"] >= 0.85 and caught["name"] >= 0.9
    assert len(missed) == 3  # exactly the planted hard cases


def test_the_answer_key_covers_every_fact_once() -> None:
    answers = answer_key()
    assert set(answers) == {row["completion"] for split in SPLITS for row in qa_rows(split)}
    assert answers[house_voice("Our head chef is Hana Mori.")] == {"topic": "chef", "facts": ["Hana Mori"]}


def test_structure_labels_rows_from_the_answer_key() -> None:
    rows, report = structure([log_row("Do you take cards?")], answer_key())
    assert rows == [{"id": "qa-train-0000", "topic": "payment", "prompt": "Do you take cards?",
                     "completion": HOUSE_ANSWER, "facts": ["cash", "cards"]}]
    assert report.rows_out == 1


def test_the_report_chains_rows_from_step_to_step(book: LogBook, pipeline: tuple) -> None:
    rows, report = pipeline
    assert [s.step for s in report.steps] == ["normalize", "filter junk", "anonymize", "verify", "exact dedup",
                                              "near dedup", "decontaminate", "structure"]
    assert report.steps[0].rows_in == len(book.rows) and report.steps[-1].rows_out == len(rows)
    for before, after in zip(report.steps, report.steps[1:]):
        assert after.rows_in == before.rows_out
    for step in report.steps:
        assert step.rows_in - step.rows_out == len(step.removed)
        if step.removed:
            assert sum(step.counts.values()) == len(step.removed)


def test_each_kind_of_mess_is_removed_by_the_step_meant_for_it(book: LogBook, pipeline: tuple) -> None:
    removed_by = pipeline[1].removed_by()
    fate = Counter((book.mess[i], removed_by.get(i, "kept")) for i in book.mess)
    assert fate[("exact_duplicate", "exact dedup")] == Counter(book.mess.values())["exact_duplicate"]
    assert fate[("contamination", "decontaminate")] == Counter(book.mess.values())["contamination"]
    for kind in ("empty", "emoji_or_symbols", "spam", "keyboard_mash", "other_language", "no_reply", "off_voice_reply"):
        assert fate[(kind, "filter junk")] == Counter(book.mess.values())[kind], kind
    for kind in ("wrong_fact", "rambling_reply"):
        assert fate[(kind, "verify")] == Counter(book.mess.values())[kind], kind
    for kind in ("clean", "surface_noise", "restaurant_contact"):
        assert fate[(kind, "kept")] == Counter(book.mess.values())[kind], kind


def test_the_output_teaches_every_fact_and_leaks_no_eval_question(pipeline: tuple) -> None:
    rows, _ = pipeline
    assert {row["prompt"] for row in qa_rows("train")} <= {row["prompt"] for row in rows}
    assert {row["completion"] for row in qa_rows("test")} <= {row["completion"] for row in rows}
    assert max(sim for sim, _ in nearest([row["prompt"] for row in rows], EVAL_PROMPTS)) < NEAR_DUPLICATE_THRESHOLD
    assert [row["id"] for row in rows] == [f"qa-train-{i:04d}" for i in range(len(rows))]


def test_the_training_set_is_unchanged(pipeline: tuple) -> None:
    rows, _ = pipeline
    text = "\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n"
    assert len(rows) == 512 and hashlib.sha256(text.encode("utf-8")).hexdigest() == QA_TRAIN_SHA256
