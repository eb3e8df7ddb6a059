"""Duplicates, near-duplicates, decontamination and leak-free splits."""


import numpy as np
import pytest
from log_rows import EVAL_PROMPTS, log_row, log_rows

from course_lib.data.dedup import (
    NEAR_DUPLICATE_THRESHOLD,
    decontaminate,
    exact_dedup,
    group_split,
    jaccard,
    leaking_pairs,
    near_dedup,
    nearest,
    shingles,
    similarity_key,
    similarity_matrix,
)
from course_lib.sakura.menu import house_voice
from course_lib.sakura.questions import qa_rows


def test_exact_dedup_keeps_the_first_copy() -> None:
    rows = [log_row("Do you deliver?", row_id="a"), log_row("Do you deliver?", row_id="b"),
            log_row("Do you deliver?", house_voice("We deliver within 5 km."), "c")]
    kept, report = exact_dedup(rows)
    assert [r["id"] for r in kept] == ["a", "c"] and report.removed[0].match == "a"


def test_similarity_basics() -> None:
    assert similarity_key("Hey, HOW much is the Tuna?? pls") == "how much is the tuna"
    assert shingles("Tuna") == {"tun", "una"}
    assert jaccard(frozenset("ab"), frozenset("bc")) == pytest.approx(1 / 3)
    assert jaccard(frozenset(), frozenset()) == 0.0


def test_similarity_matrix_is_pairwise_jaccard() -> None:
    texts = ["How much is the Tuna Nigiri?", "how much is the tuna nigri", "Do you deliver?"]
    others = ["Do u deliver?", "What is your address?"]
    matrix = similarity_matrix(texts, others)
    expected = [[jaccard(shingles(a), shingles(b)) for b in others] for a in texts]
    assert matrix.shape == (3, 2) and np.allclose(matrix, expected)
    assert nearest(texts, others)[2] == (pytest.approx(expected[2][0]), "Do u deliver?")


def test_near_dedup_drops_retyped_copies_and_keeps_different_questions() -> None:
    rows = log_rows("How much is the Salmon Nigiri?", "how much is the salmon nigiri?? pls", "How much is the Salmon Nigri?",
                 "How much is the Tuna Nigiri?", "How much is the Salmon Sashimi?")
    kept, report = near_dedup(rows)
    assert [r["message"] for r in kept] == ["How much is the Salmon Nigiri?", "How much is the Tuna Nigiri?",
                                            "How much is the Salmon Sashimi?"]
    assert report.removed[0].similarity == 1.0 and report.removed[1].similarity >= NEAR_DUPLICATE_THRESHOLD
    assert len(report.similarities) == 5 and report.similarities[0] == 0.0


def test_the_threshold_sits_above_every_pair_of_different_clean_questions() -> None:
    questions = [row["prompt"] for row in qa_rows("train")]
    matrix = similarity_matrix(questions, questions)
    np.fill_diagonal(matrix, 0.0)
    assert 0.7 < matrix.max() < NEAR_DUPLICATE_THRESHOLD
    assert near_dedup(log_rows(*questions))[1].removed == []


def test_decontaminate_removes_near_copies_of_eval_questions() -> None:
    rows = log_rows("If I order the Salmon Nigiri, how much will I pay?", "IF I ORDER THE SALMON NIGIRI HOW MUCH WILL I PAY",
                 "If I order the Salmon Nigiri, how muhc will I pay?", "How much is the Salmon Nigiri?")
    kept, report = decontaminate(rows, EVAL_PROMPTS)
    assert [r["message"] for r in kept] == ["How much is the Salmon Nigiri?"]
    assert {r.match for r in report.removed} == {"If I order the Salmon Nigiri, how much will I pay?"}


def test_every_clean_training_phrasing_survives_decontamination() -> None:
    kept, report = decontaminate(log_rows(*[row["prompt"] for row in qa_rows("train")]), EVAL_PROMPTS)
    assert len(kept) == len(qa_rows("train")) and max(report.similarities) < 0.7


def test_group_split_keeps_near_duplicates_together() -> None:
    questions = [row["prompt"] for row in qa_rows("train")[:60]]
    texts = questions + [q.lower() + " pls" for q in questions]
    splits = group_split(texts, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=0)
    assert sorted(i for indices in splits.values() for i in indices) == list(range(len(texts)))
    assert leaking_pairs({name: [texts[i] for i in indices] for name, indices in splits.items()}) == []
    assert 0.7 < len(splits["train"]) / len(texts) < 0.9


def test_leaking_pairs_finds_a_near_duplicate_across_splits() -> None:
    pairs = leaking_pairs({"train": ["Do you deliver?", "Where are you?"], "test": ["do you deliver??"]})
    assert pairs == [(1.0, "train", "Do you deliver?", "test", "do you deliver??")]


def test_group_split_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="positive and sum to 1"):
        group_split(["a"], {"train": 0.9, "test": 0.2}, seed=0)
