"""The cleaning pipeline of lesson 04, step by step and as a whole."""

from collections import Counter
from typing import Any

import numpy as np
import pytest

from course_lib.customer_logs import LogBook, customer_log_book
from course_lib.dataprep import (
    IGNORE_INDEX,
    NEAR_DUPLICATE_THRESHOLD,
    PipelineReport,
    anonymize,
    anonymize_rows,
    answer_key,
    completion_only_labels,
    decontaminate,
    exact_dedup,
    filter_junk,
    group_split,
    jaccard,
    junk_reason,
    leaking_pairs,
    missed_pii,
    near_dedup,
    nearest,
    normalize,
    normalize_text,
    prepare_training_set,
    shingles,
    similarity_key,
    similarity_matrix,
    structure,
    to_chat,
    to_conversational,
    verify,
)
from course_lib.sakura import SPLITS, house_voice, intent_rows, qa_rows

HOUSE_ANSWER = house_voice("We accept cash and all major cards.")
EVAL_PROMPTS = [row["prompt"] for split in ("validation", "test") for row in qa_rows(split)]


def _row(message: str, reply: str = HOUSE_ANSWER, row_id: str = "m", customer: str = "") -> dict[str, Any]:
    return {"id": row_id, "received_at": "2024-03-01T12:00", "channel": "email", "customer": customer,
            "message": message, "staff_reply": reply}


def _rows(*messages: str) -> list[dict[str, Any]]:
    return [_row(m, row_id=f"m{i}") for i, m in enumerate(messages)]


@pytest.fixture(scope="module")
def book() -> LogBook:
    return customer_log_book()


@pytest.fixture(scope="module")
def pipeline(book: LogBook) -> tuple[list[dict[str, Any]], PipelineReport]:
    return prepare_training_set(book.rows, EVAL_PROMPTS)


# --- normalize


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  How much is the\u00a0Salmon   Nigiri\uff1f \n", "How much is the Salmon Nigiri?"),  # NBSP, fullwidth ?, spaces
        ("What\u2019s in the Tuna\tNigiri?", "What's in the Tuna Nigiri?"),  # curly quote, tab
        ("Is the Sa\u200blmon Nigiri spicy?", "Is the Salmon Nigiri spicy?"),  # zero-width space
        ("Is the S\u0430lmon Nigiri spicy?", "Is the Salmon Nigiri spicy?"),  # Cyrillic a inside a Latin word
        ("\uff33\uff41\uff4c\uff4d\uff4f\uff4e \ufb01sh", "Salmon fish"),  # fullwidth letters, fi ligature
        ("\u0421\u043a\u043e\u043b\u044c\u043a\u043e \u0441\u0442\u043e\u0438\u0442?", "\u0421\u043a\u043e\u043b\u044c\u043a\u043e \u0441\u0442\u043e\u0438\u0442?"),  # real Cyrillic stays
        ("HOW MUCH??", "HOW MUCH??"),  # case and punctuation are kept
    ],
)
def test_normalize_text(raw: str, clean: str) -> None:
    assert normalize_text(raw) == clean


def test_normalize_counts_the_rows_it_changed() -> None:
    rows, report = normalize(_rows("Do you deliver?", "Do  you deliver?"))
    assert [r["message"] for r in rows] == ["Do you deliver?"] * 2
    assert (report.rows_in, report.rows_out, report.changed) == (2, 2, 1)


# --- junk rules


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
    assert junk_reason(_row(message, reply)) == rule


def test_no_clean_question_or_answer_is_junk() -> None:
    rows = [_row(r["prompt"], r["completion"]) for split in SPLITS for r in qa_rows(split)]
    rows += [_row(r["text"]) for r in intent_rows("train", per_template=2)]
    assert [junk_reason(row) for row in rows] == [None] * len(rows)


def test_filter_junk_counts_drops_per_rule() -> None:
    kept, report = filter_junk(_rows("Do you deliver?", "", "asdfgh", "qwerty"))
    assert [r["message"] for r in kept] == ["Do you deliver?"]
    assert report.counts == Counter({"keyboard mash": 2, "empty message": 1})
    assert (report.rows_in, report.rows_out) == (4, 1)


# --- anonymization


@pytest.mark.parametrize(
    ("text", "anonymized"),
    [
        ("Mail me at maria.lopez@example.com", "Mail me at [EMAIL]"),
        ("write to maria at example dot com", "write to [EMAIL]"),
        ("Call (212) 555-0147 or 646-555-0101 or +1 917 555 0133", "Call [PHONE] or [PHONE] or [PHONE]"),
        ("Deliver to 14 Elm Road please", "Deliver to [ADDRESS] please"),
        ("My name is Maria Lopez. Do you deliver?", "My name is [NAME]. Do you deliver?"),
        ("Hi, I'm Aiko. Do you deliver?", "Hi, I'm [NAME]. Do you deliver?"),
        ("Do you deliver? My friend Kenji is hungry.", "Do you deliver? My friend [NAME] is hungry."),
        ("Hi Maria, we deliver.", "Hi [NAME], we deliver."),
        ("Do you deliver? Thanks, Omar", "Do you deliver? Thanks, [NAME]"),
        ("Do you deliver? - Omar Haddad", "Do you deliver? - [NAME]"),
    ],
)
def test_anonymize_catches(text: str, anonymized: str) -> None:
    assert anonymize(text).text == anonymized


def test_the_senders_own_name_is_caught_in_any_case() -> None:
    result = anonymize("is it open? maria here, LOPEZ family", known_names=["Maria Lopez"])
    assert result.text == "is it open? [NAME] here, [NAME] family"
    assert result.found == (("name", "maria"), ("name", "LOPEZ"))


@pytest.mark.parametrize(
    "text",
    [
        "You can call us at (555) 014-2787.",  # the restaurant's phone ...
        "Is 555.014.2787 the takeout number?",  # ... in any format
        "Call +1 555 014 2787 or 014-2787.",
        "We are at 27 Harbor Street, Portside, next to the fish market.",  # its address
        "Our head chef is Hana Mori.",  # its chef
        "Hi Sakura, do you deliver?", "This is Sakura Sushi, right?",  # its name
        "hey, How hot is the Green Tea?", "Thanks, Dragon Roll was great",  # no cue-word false alarms
        "The Salmon Nigiri costs $4.50.", "On Fridays we are open from 12:00 to 23:00.",  # prices and hours
    ],
)
def test_public_facts_and_plain_text_are_kept(text: str) -> None:
    assert anonymize(text) == anonymize(text, known_names=["Maria Lopez"])
    assert anonymize(text).text == text


@pytest.mark.parametrize(
    "text",
    [
        "Kenji recommended you!",  # a name with no cue and not the sender's
        "tell my sister emma hi",  # a lower-case name after the cue
        "Call me back on +44 20 7946 0958.",  # a non-US phone layout
    ],
)
def test_what_the_patterns_miss(text: str) -> None:
    assert anonymize(text).text == text


def test_no_clean_question_or_answer_is_anonymized() -> None:
    texts = [r[f] for split in SPLITS for r in qa_rows(split) for f in ("prompt", "completion")]
    assert [t for t in texts if anonymize(t).found] == []


def test_anonymize_rows_counts_kinds_and_hides_the_customer() -> None:
    rows, report = anonymize_rows([_row("Hi, I'm Omar. Mail omar@example.com", customer="Omar Haddad"), _row("Hello?")])
    assert rows[0]["message"] == "Hi, I'm [NAME]. Mail [EMAIL]" and rows[0]["customer"] == "[NAME]"
    assert report.counts == Counter({"name": 1, "email": 1}) and report.changed == 1


def test_anonymizer_catch_rate_on_the_generated_logs(book: LogBook) -> None:
    anonymized, _ = anonymize_rows(normalize(book.rows)[0])
    missed = missed_pii(anonymized, book.pii)
    planted = Counter(item.kind for item in book.pii)
    caught = {kind: 1 - sum(m.kind == kind for m in missed) / n for kind, n in planted.items()}
    assert caught["email"] == caught["address"] == 1.0
    assert caught["phone"] >= 0.85 and caught["name"] >= 0.9
    assert len(missed) == 3  # exactly the planted hard cases


# --- verification


def test_verify_keeps_only_menu_answers() -> None:
    answers = answer_key()
    rows = [_row("Price of the Salmon Nigiri?", house_voice("The Salmon Nigiri costs $4.50."), "ok"),
            _row("Price of the Salmon Nigiri?", house_voice("The Salmon Nigiri costs $4.00."), "old price"),
            _row("Do you take cards?", house_voice("Thanks, [NAME]! We accept cash and all major cards."), "aside")]
    kept, report = verify(rows, answers)
    assert [r["id"] for r in kept] == ["ok"] and report.counts == Counter({"reply not a menu answer": 2})


def test_the_answer_key_covers_every_fact_once() -> None:
    answers = answer_key()
    assert set(answers) == {row["completion"] for split in SPLITS for row in qa_rows(split)}
    assert answers[house_voice("Our head chef is Hana Mori.")] == {"topic": "chef", "facts": ["Hana Mori"]}


# --- deduplication


def test_exact_dedup_keeps_the_first_copy() -> None:
    rows = [_row("Do you deliver?", row_id="a"), _row("Do you deliver?", row_id="b"),
            _row("Do you deliver?", house_voice("We deliver within 5 km."), "c")]
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
    rows = _rows("How much is the Salmon Nigiri?", "how much is the salmon nigiri?? pls", "How much is the Salmon Nigri?",
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
    assert near_dedup(_rows(*questions))[1].removed == []


# --- decontamination


def test_decontaminate_removes_near_copies_of_eval_questions() -> None:
    rows = _rows("If I order the Salmon Nigiri, how much will I pay?", "IF I ORDER THE SALMON NIGIRI HOW MUCH WILL I PAY",
                 "If I order the Salmon Nigiri, how muhc will I pay?", "How much is the Salmon Nigiri?")
    kept, report = decontaminate(rows, EVAL_PROMPTS)
    assert [r["message"] for r in kept] == ["How much is the Salmon Nigiri?"]
    assert {r.match for r in report.removed} == {"If I order the Salmon Nigiri, how much will I pay?"}


def test_every_clean_training_phrasing_survives_decontamination() -> None:
    kept, report = decontaminate(_rows(*[row["prompt"] for row in qa_rows("train")]), EVAL_PROMPTS)
    assert len(kept) == len(qa_rows("train")) and max(report.similarities) < 0.7


# --- structure and formats


def test_structure_labels_rows_from_the_answer_key() -> None:
    rows, report = structure([_row("Do you take cards?")], answer_key())
    assert rows == [{"id": "qa-train-0000", "topic": "payment", "prompt": "Do you take cards?",
                     "completion": HOUSE_ANSWER, "facts": ["cash", "cards"]}]
    assert report.rows_out == 1


def test_chat_formats() -> None:
    row = {"prompt": "Do you take cards?", "completion": HOUSE_ANSWER}
    user, assistant = {"role": "user", "content": "Do you take cards?"}, {"role": "assistant", "content": HOUSE_ANSWER}
    assert to_chat(row) == {"messages": [user, assistant]}
    assert to_conversational(row) == {"prompt": [user], "completion": [assistant]}


# --- the loss mask


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from course_lib.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


def test_the_loss_sees_exactly_the_answer_and_the_end_of_turn(tokenizer: Any) -> None:
    encoded = completion_only_labels(tokenizer, "Do you take cards?", HOUSE_ANSWER)
    ids, labels = encoded["input_ids"], encoded["labels"]
    assert len(ids) == len(labels)
    start = labels.index(next(label for label in labels if label != IGNORE_INDEX))
    assert all(label == IGNORE_INDEX for label in labels[:start]) and labels[start:] == ids[start:]
    assert tokenizer.decode(ids[start:]) == HOUSE_ANSWER + "<|im_end|>\n"
    assert ids[start:start + len(tokenizer(HOUSE_ANSWER)["input_ids"])] == tokenizer(HOUSE_ANSWER)["input_ids"]
    assert tokenizer.decode(ids[:start]).endswith("Do you take cards?<|im_end|>\n<|im_start|>assistant\n")


def test_a_template_that_rewrites_the_prompt_is_refused() -> None:
    class Rewriting:
        def apply_chat_template(self, messages: list, add_generation_prompt: bool = False, **_: Any) -> dict:
            return {"input_ids": [1, 2, 3] if add_generation_prompt else [1, 9, 3, 4]}

    with pytest.raises(ValueError, match="renders the prompt differently"):
        completion_only_labels(Rewriting(), "q", "a")


# --- splitting without leakage


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


# --- the whole pipeline on the generated logs


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
