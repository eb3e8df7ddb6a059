"""The committed Sakura data sets: validated, leak-free, consistent with the scorers."""

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from course_lib.data.dedup import NEAR_DUPLICATE_THRESHOLD, nearest
from course_lib.data.jsonl import DataValidationError, read_jsonl
from course_lib.sakura.cleaning import prepare_training_set
from course_lib.sakura.datasets import DATASETS, SCHEMAS, load_data, load_rows, rows_about, schema_name, taught_facts
from course_lib.sakura.menu import MENU, all_facts
from course_lib.sakura.questions import QUESTION_TEMPLATES, qa_rows
from course_lib.sakura.scoring import contains_facts, follows_house_voice


def test_every_data_set_loads_as_a_validated_dataset() -> None:
    """Each data set becomes a ``datasets.Dataset`` holding the validated rows, with its schema's columns."""
    for name in DATASETS:
        data, rows = load_data(name), load_rows(name)
        assert len(data) == len(rows) >= 10, name
        assert set(data.column_names) == set(SCHEMAS[schema_name(name)]), name
        assert data[0] == rows[0] and data[len(rows) - 1] == rows[-1], name


def test_no_question_leaks_across_splits() -> None:
    for prefix, field in (("qa", "prompt"), ("intents", "text"), ("orders", "question"), ("preferences", "prompt")):
        splits = [name for name in DATASETS if name.startswith(prefix + "_") and name != "qa_test_all"]
        seen: dict[str, str] = {}
        for split in splits:
            for row in load_rows(split):
                assert seen.setdefault(row[field], split) == split, f"{row[field]!r} in {seen[row[field]]} and {split}"


def test_qa_test_all_asks_every_test_phrasing_and_contains_qa_test() -> None:
    every = load_rows("qa_test_all")
    assert {row["prompt"] for row in load_rows("qa_test")} < {row["prompt"] for row in every}
    assert len(every) == sum(len(QUESTION_TEMPLATES[fact["topic"]]["test"]) for fact in all_facts())
    assert [r["prompt"] for r in every] == [r["prompt"] for r in qa_rows("test", every_phrasing=True)]


def test_no_training_question_is_a_near_duplicate_of_a_test_phrasing() -> None:
    closest = nearest([row["prompt"] for row in load_rows("qa_test_all")], [row["prompt"] for row in load_rows("qa_train")])
    worst = max(closest)
    assert worst[0] < NEAR_DUPLICATE_THRESHOLD, f"a training question is too close to a test phrasing: {worst}"


def test_test_questions_ask_about_facts_that_training_teaches() -> None:
    taught = {row["completion"] for row in load_rows("qa_train")}
    assert {row["completion"] for row in load_rows("qa_test")} <= taught


def test_qa_train_is_the_cleaned_raw_log() -> None:
    held_out = [row["prompt"] for split in ("qa_validation", "qa_test") for row in load_rows(split)]
    assert prepare_training_set(load_rows("raw_messages"), held_out)[0] == load_rows("qa_train")


def test_training_keeps_at_least_two_clean_phrasings_of_every_fact() -> None:
    clean = {row["prompt"] for row in qa_rows("train")}
    phrasings: dict[str, int] = {}
    for row in load_rows("qa_train"):
        phrasings[row["completion"]] = phrasings.get(row["completion"], 0) + (row["prompt"] in clean)
    assert len(phrasings) == len({row["completion"] for row in qa_rows("train")})
    assert min(phrasings.values()) >= 2


def test_no_training_prompt_is_a_near_duplicate_of_an_eval_question() -> None:
    held_out = [row["prompt"] for split in ("qa_validation", "qa_test") for row in load_rows(split)]
    closest = nearest([row["prompt"] for row in load_rows("qa_train")], held_out)
    assert max(similarity for similarity, _ in closest) < NEAR_DUPLICATE_THRESHOLD


def test_reference_answers_pass_the_scorers() -> None:
    for row in load_rows("qa_train"):
        assert follows_house_voice(row["completion"]) and contains_facts(row["completion"], row["facts"])


def test_preference_pairs_reject_what_the_scorers_reject() -> None:
    for row in load_rows("preferences_train"):
        assert row["chosen"] != row["rejected"]
        if row["rejection_kind"] == "rude":
            assert not follows_house_voice(row["rejected"])


def test_order_totals_add_up() -> None:
    prices = {dish.name: Decimal(dish.price) for dish in MENU}
    for row in load_rows("orders_train") + load_rows("orders_test"):
        assert Decimal(row["total"]) == sum(prices[i["dish"]] * i["quantity"] for i in row["items"])


def test_order_items_must_be_menu_dishes(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps({"id": "o", "question": "q", "items": [{"dish": "Pizza", "quantity": 1}], "total": "9.00"}) + "\n")
    with pytest.raises(DataValidationError, match=r"line 1: field 'items': expected a non-empty list of \{dish: a menu dish"):
        read_jsonl(path, SCHEMAS["orders"])


GOOD_PAIR = {"id": "p1", "prompt": "Price of the Salmon Nigiri?", "chosen": "It costs $4.50.",
             "rejected": "It costs $9.50.", "rejection_kind": "wrong_fact"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rejected": " It costs $4.50. "}, r"line 2: field 'rejected': expected an answer different from 'chosen'"),
        ({"chosen": "  "}, r"line 2: field 'chosen': expected a non-empty string"),
        ({"prompt": None}, r"line 2: missing field 'prompt'"),
    ],
)
def test_bad_preference_pairs_name_line_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change, message) -> None:
    bad = {key: value for key, value in {**GOOD_PAIR, "id": "p2", **change}.items() if value is not None}
    (tmp_path / "preferences_train.jsonl").write_text(json.dumps(GOOD_PAIR) + "\n" + json.dumps(bad) + "\n")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataValidationError, match=rf"preferences_train.jsonl, {message}"):
        load_rows("preferences_train")


def test_unknown_data_set_is_named() -> None:
    with pytest.raises(DataValidationError, match=r"Unknown data set 'qa_dev'. Known data sets: qa_train"):
        load_data("qa_dev")


def test_missing_file_says_how_to_regenerate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataValidationError, match=r"qa_train.jsonl not found. Regenerate the data with `make data`"):
        load_data("qa_train")


def test_taught_facts_are_a_seeded_sample_of_the_tested_facts() -> None:
    every = taught_facts(None, seed=1)
    assert len(every) == len({r["completion"] for r in load_rows("qa_test")}) == 153
    assert taught_facts(8, seed=1) == taught_facts(8, seed=1) != taught_facts(8, seed=2)
    assert taught_facts(8, seed=1) <= every and len(taught_facts(8, seed=1)) == 8
    assert taught_facts(500, seed=1) == every
    # A smaller sample is the start of a larger one (lesson 06 teaches 8 of lesson 05's 24 facts).
    assert all(taught_facts(small, seed=3) <= taught_facts(24, seed=3) for small in (1, 8, 13, 23))


def test_taught_facts_take_the_kinds_of_fact_in_turn() -> None:
    kind = {row["completion"]: row["topic"] for row in load_rows("qa_test")}
    counts = Counter(kind[fact] for fact in taught_facts(24, seed=42))
    # 12 kinds: one of each in the first round, then the six kinds with more facts in turn.
    assert counts == {"price": 3, "ingredients": 3, "allergens": 3, "vegetarian": 3, "spicy": 3, "hours": 3,
                      "address": 1, "phone": 1, "reservations": 1, "delivery": 1, "payment": 1, "chef": 1}


def test_rows_about_keeps_every_phrasing_of_a_fact() -> None:
    facts = taught_facts(3, seed=0)
    rows = rows_about("qa_train", facts)
    assert {r["completion"] for r in rows} == facts
    assert len(rows) >= 2 * len(facts)
