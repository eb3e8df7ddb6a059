"""The course's shared fine-tuned model knows what it was taught: the bar every later lesson stands on.

The suite runs this test first (conftest.py), so it builds the shared model
once, at one thread, before the lessons that reuse it start.
"""

import pytest

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.core.profiles import PROFILES
from course_lib.eval.answers import evaluate_answers
from course_lib.recipes.sft import ANSWER_TOKENS, shared_sft_model
from course_lib.sakura.datasets import rows_about, taught_facts

FACT_ACCURACY_BAR = 0.85  # on held-out phrasings of the taught facts, cpu profile
HOUSE_VOICE_BAR = 0.95


@pytest.mark.real_model
def test_the_shared_model_states_held_out_facts_in_the_house_voice() -> None:
    profile = PROFILES["cpu"]
    folder = shared_sft_model(profile)
    rows = rows_about("qa_test_all", taught_facts(profile.num_facts, profile.seed))
    scores = evaluate_answers(load_model(str(folder)), load_tokenizer(str(folder)), rows, max_new_tokens=ANSWER_TOKENS,
                              batch_size=profile.eval_batch_size)
    wrong = [f"{row['prompt']!r} -> {reply!r}" for row, reply, right in zip(rows, scores.replies, scores.correct)
             if not right]
    assert scores.fact_accuracy >= FACT_ACCURACY_BAR, (
        f"shared model's fact accuracy {scores.fact_accuracy:.0%} on {len(rows)} held-out questions is under the bar "
        f"{FACT_ACCURACY_BAR:.0%}; wrong answers:\n" + "\n".join(wrong))
    assert scores.house_voice >= HOUSE_VOICE_BAR, f"house voice {scores.house_voice:.0%} on {len(rows)} replies"
