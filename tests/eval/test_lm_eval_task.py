"""Our evaluation set as an lm-eval custom task: the same prompts, the same replies, the same scores."""

from pathlib import Path

import pytest

from course_lib.eval.harness import SAKURA_METRICS, ChatSystem, checked_eval_set, score_run
from course_lib.eval.lm_eval_task import run_lm_eval, task_config
from course_lib.sakura.menu import house_voice

pytestmark = pytest.mark.real_model

ROWS = [
    {"id": "q1", "topic": "price", "prompt": "How much is the Salmon Nigiri?",
     "reference": house_voice("The Salmon Nigiri costs $4.50."), "facts": ["$4.50"]},
    {"id": "q2", "topic": "hours", "prompt": "When do you open on Fridays?",
     "reference": house_voice("On Fridays we are open from 12:00 to 23:00."), "facts": ["12:00", "23:00"]},
    {"id": "q4", "topic": "allergens", "prompt": "Allergens in the Tuna Nigiri?",
     "reference": house_voice("The Tuna Nigiri contains fish."), "facts": ["fish"]},
    {"id": "q3", "topic": "vegetarian", "prompt": "Can a vegetarian eat the Edamame, which I love?",
     "reference": house_voice("Yes, the Edamame is vegetarian."), "facts": ["is vegetarian"]},
]


def test_lm_eval_generates_and_scores_what_our_harness_does(tiny_llama, smollm2_tokenizer, tmp_path: Path) -> None:
    eval_set = checked_eval_set("sakura-eval-test", ROWS)
    path = tmp_path / "sakura-eval-test.jsonl"
    eval_set.write(path)
    model = tiny_llama().eval()
    ours = ChatSystem("tiny", model, smollm2_tokenizer).run(eval_set, max_new_tokens=6, batch_size=2)
    scores, replies = run_lm_eval(model, smollm2_tokenizer, path, max_new_tokens=6, batch_size=2)
    assert [replies[case.id].strip() for case in eval_set.cases] == list(ours.replies)
    our_scores, _ = score_run(eval_set, ours, SAKURA_METRICS)
    assert scores["fact_accuracy"] == pytest.approx(our_scores["fact accuracy"].value)
    assert scores["house_voice"] == pytest.approx(our_scores["house voice"].value)


def test_a_missing_evaluation_set_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.jsonl not found: write the evaluation set first"):
        task_config(tmp_path / "missing.jsonl", 8, "<|im_end|>")
