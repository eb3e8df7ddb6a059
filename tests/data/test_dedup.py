"""Duplicates, near-duplicates, decontamination and leak-free splits."""


import numpy as np
import pytest
from datasketch import MinHash
from log_rows import EVAL_PROMPTS, log_row, log_rows

from course_lib.data.dedup import (
    MAX_MISS_AT_THRESHOLD,
    NEAR_DUPLICATE_THRESHOLD,
    candidate_probability,
    choose_banding,
    decontaminate,
    estimated_jaccard,
    exact_dedup,
    group_split,
    jaccard,
    leaking_pairs,
    lsh_near_duplicate_pairs,
    minhash_signature,
    minhash_signatures,
    near_dedup,
    near_duplicate_groups,
    near_duplicate_pairs,
    nearest,
    shingles,
    similarity_key,
    similarity_matrix,
    synthetic_corpus,
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


def retyped_bank() -> list[str]:
    """The clean training questions and, for every third one, a retyped copy (case, a typo, a 'pls')."""
    questions = [row["prompt"] for row in qa_rows("train")]
    copies = [q.lower().replace("the ", "teh ", 1) + " pls" for q in questions[::3]]
    return questions + copies


def test_near_duplicate_pairs_are_the_similarity_matrix_above_the_threshold() -> None:
    texts = retyped_bank()[:200]
    dense = np.argwhere(np.triu(similarity_matrix(texts, texts) >= NEAR_DUPLICATE_THRESHOLD, k=1))
    assert near_duplicate_pairs(texts) == {(int(i), int(j)) for i, j in dense}
    assert near_duplicate_pairs(["Do you deliver?", "do you deliver??", "Where are you?"]) == {(0, 1)}


def test_near_duplicate_groups_join_pairs_transitively() -> None:
    texts = ["How much is the Salmon Nigiri?", "Where are you?", "how much is the salmon nigiri pls",
             "How much is the Salmon Nigri?"]
    assert near_duplicate_groups(texts) == [[0, 2, 3], [1]]


@pytest.mark.parametrize(("text", "num_perm", "seed"), [("How much is the Salmon Nigiri?", 128, 1),
                                                         ("Do u deliver? 🍣", 64, 7), ("ok", 16, 0)])
def test_minhash_signature_equals_datasketch(text: str, num_perm: int, seed: int) -> None:
    grams = shingles(text)
    reference = MinHash(num_perm=num_perm, seed=seed)
    reference.update_batch([gram.encode("utf-8") for gram in grams])
    ours = minhash_signature(grams, num_perm, seed)
    assert ours.dtype == reference.hashvalues.dtype and np.array_equal(ours, reference.hashvalues)


def test_minhash_signatures_of_many_texts_equal_one_at_a_time() -> None:
    texts = retyped_bank()[:30]
    signatures = minhash_signatures(texts, 32, seed=3)
    assert signatures.shape == (30, 32)
    assert all(np.array_equal(row, minhash_signature(shingles(t), 32, 3)) for row, t in zip(signatures, texts))


def test_minhash_signature_rejects_an_empty_set() -> None:
    with pytest.raises(ValueError, match="at least one shingle"):
        minhash_signature(frozenset())


def test_estimated_jaccard_is_close_to_the_exact_one() -> None:
    a = frozenset(f"w{i}" for i in range(200))
    b = frozenset(f"w{i}" for i in range(100, 300))  # Jaccard 100/300
    estimate = estimated_jaccard(minhash_signature(a, 1024), minhash_signature(b, 1024))
    spread = np.sqrt(1 / 3 * 2 / 3 / 1024)  # binomial standard deviation of the estimate
    assert abs(estimate - 1 / 3) < 4 * spread
    assert estimated_jaccard(minhash_signature(a), minhash_signature(a)) == 1.0


def test_candidate_probability_is_the_s_curve() -> None:
    assert candidate_probability(0.8, 21, 6) == pytest.approx(1 - (1 - 0.8**6) ** 21)
    assert candidate_probability(0.3, 1, 1) == pytest.approx(0.3)
    curve = candidate_probability(np.linspace(0, 1, 11), 20, 5)
    assert curve[0] == 0.0 and curve[-1] == 1.0 and np.all(np.diff(curve) > 0)


def test_choose_banding_takes_the_steepest_curve_that_misses_rarely() -> None:
    bands, rows = choose_banding(0.8, 128, MAX_MISS_AT_THRESHOLD)
    assert (bands, rows) == (21, 6) and bands * rows <= 128
    assert 1 - candidate_probability(0.8, bands, rows) <= MAX_MISS_AT_THRESHOLD
    assert 1 - candidate_probability(0.8, 128 // (rows + 1), rows + 1) > MAX_MISS_AT_THRESHOLD
    with pytest.raises(ValueError, match="No banding of 2 slots"):
        choose_banding(0.1, 2, 1e-6)


def test_lsh_finds_the_same_pairs_as_all_pairs_and_proposes_few_others() -> None:
    texts = retyped_bank()
    exact = near_duplicate_pairs(texts)
    search = lsh_near_duplicate_pairs(texts)
    borderline = [jaccard(shingles(texts[i]), shingles(texts[j])) < 0.9 for i, j in exact]
    assert len(exact) >= 30 and sum(borderline) >= 10 and search.pairs == exact
    assert search.pairs <= search.candidates and len(search.candidates) < 0.05 * len(texts) ** 2 / 2


def test_a_shallow_banding_misses_pairs() -> None:
    texts = retyped_bank()
    exact = near_duplicate_pairs(texts)
    shallow = lsh_near_duplicate_pairs(texts, bands_rows=(2, 16))  # P(candidate | s = 0.8) = 0.05
    assert len(shallow.pairs) < len(exact) and shallow.pairs <= exact


def test_synthetic_corpus_is_distinct_texts_with_planted_near_copies() -> None:
    messages = [row["prompt"] for row in qa_rows("train")]
    corpus = synthetic_corpus(messages, 101, seed=0)
    assert len(corpus) == 101 and len(set(corpus)) == 101 and corpus == synthetic_corpus(messages, 101, seed=0)
    assert synthetic_corpus(messages, 50, seed=0) == corpus[:50]  # a larger corpus extends a smaller one
    planted = [jaccard(shingles(corpus[i]), shingles(corpus[i + 1])) for i in range(0, 100, 2)]
    assert 0.6 < min(planted) and max(planted) < 1.0
    unrelated = [jaccard(shingles(corpus[i]), shingles(corpus[i + 3])) for i in range(0, 96, 2)]
    assert np.median(unrelated) < 0.3
