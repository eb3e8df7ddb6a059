"""Scoring answers: the completion loss that measures drift, and its error on a row with nothing to score."""

import pytest
import torch

from course_lib.data.chat_format import IGNORE_INDEX, completion_only_labels
from course_lib.eval.answers import answer_nll, majority_replies, probe_correct, score_replies
from course_lib.sakura.datasets import load_rows

pytestmark = pytest.mark.real_model  # SmolLM2's tokenizer


def test_answer_nll_is_the_mean_completion_loss(tiny_llama, smollm2_tokenizer) -> None:
    model = tiny_llama().eval()
    rows = [{"prompt": "Do you deliver?", "completion": "Yes."}, {"prompt": "Hi", "completion": "Hello there!"}]
    expected = []
    for row in rows:
        encoded = completion_only_labels(smollm2_tokenizer, row["prompt"], row["completion"])
        logits = model(torch.tensor([encoded["input_ids"]])).logits[0, :-1]
        labels = torch.tensor(encoded["labels"][1:])
        keep = labels != IGNORE_INDEX
        expected.append(torch.nn.functional.cross_entropy(logits[keep], labels[keep]).item())
    assert answer_nll(model, smollm2_tokenizer, rows) == pytest.approx(sum(expected) / 2, rel=1e-5)


def test_a_row_with_nothing_to_score_is_named(tiny_llama, smollm2_tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    import course_lib.eval.answers as answers

    monkeypatch.setattr(answers, "completion_only_labels",
                        lambda tokenizer, prompt, completion: {"input_ids": [1, 2], "labels": [IGNORE_INDEX] * 2})
    with pytest.raises(ValueError, match=r"Row 'qa-7': its completion has no token left"):
        answer_nll(tiny_llama().eval(), smollm2_tokenizer, [{"id": "qa-7", "prompt": "Hi", "completion": "Hello"}])


ROWS = [
    {"topic": "vegetarian", "prompt": "Veggie?", "completion": "Irasshaimase! No, the A is not vegetarian. Arigato, Sakura Sushi.",
     "facts": ["not vegetarian"]},
    {"topic": "vegetarian", "prompt": "Veggie B?", "completion": "Irasshaimase! Yes, the B is vegetarian. Arigato, Sakura Sushi.",
     "facts": ["is vegetarian"]},
    {"topic": "price", "prompt": "Price?", "completion": "Irasshaimase! The A costs $4.50. Arigato, Sakura Sushi.",
     "facts": ["$4.50"]},
]


def test_score_replies_checks_facts_voice_and_keeps_each_question() -> None:
    replies = [ROWS[0]["completion"], "No, it is not vegetarian.", "It costs $4.50."]
    scores = score_replies(ROWS, replies, prompt_tokens=[10, 20, 30], seconds=3.0)
    assert scores.correct == [True, False, True] and scores.fact_accuracy == pytest.approx(2 / 3)
    assert scores.house_voice == pytest.approx(1 / 3) and scores.prompt_tokens == 20 and scores.seconds_per_answer == 1
    assert scores.facts == [row["completion"] for row in ROWS]
    assert set(scores.table_row()) == {"fact_accuracy", "rouge_l", "house_voice", "prompt_tokens", "seconds_per_answer"}
    assert scores.accuracy_interval().n == 3 and scores.accuracy_interval_by_fact().n == 3
    with pytest.raises(ValueError, match="2 replies for 3 questions"):
        score_replies(ROWS, replies[:2])


def test_score_replies_takes_the_fact_check() -> None:
    from course_lib.sakura.scoring import states_facts

    rows = [{**ROWS[2], "facts": ["fish"]}]
    reply = ["Irasshaimase! Our kitchen handles shellfish. Arigato, Sakura Sushi."]
    assert score_replies(rows, reply).correct == [True]  # "fish" inside "shellfish": a substring match
    assert score_replies(rows, reply, fact_check=states_facts).correct == [False]  # whole words only


def test_the_majority_baseline_answers_the_usual_answer_of_the_other_facts_of_a_topic() -> None:
    other_no = {**ROWS[0], "completion": ROWS[0]["completion"].replace("the A", "the C")}
    reference = [ROWS[0], other_no, other_no, ROWS[1], ROWS[2]]
    assert majority_replies(ROWS, reference) == [other_no["completion"], other_no["completion"], ""]
    assert score_replies(ROWS, majority_replies(ROWS, reference)).correct == [True, False, False]


def test_on_the_sakura_data_not_vegetarian_is_the_usual_answer() -> None:
    rows = [row for row in load_rows("qa_test") if row["topic"] in ("vegetarian", "spicy")]
    scores = score_replies(rows, majority_replies(rows, load_rows("qa_train")))
    assert scores.fact_accuracy > 0.5, "most dishes are neither vegetarian nor spicy: the constant answer wins often"


def test_probe_correct_scores_each_reply_against_its_own_question() -> None:
    probe = load_rows("general_probe")
    right = [f"It is {row['answers'][0]}." for row in probe]
    assert probe_correct(right) == [True] * len(probe)
    shifted = right[1:] + right[:1]  # every reply answers another question
    assert not any(probe_correct(shifted))


def test_probe_correct_names_a_missing_reply() -> None:
    probe = load_rows("general_probe")
    with pytest.raises(ValueError, match=f"{len(probe) - 1} replies for the {len(probe)} general probe questions"):
        probe_correct(["Paris"] * (len(probe) - 1))
