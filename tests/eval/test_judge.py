"""The judge: replies parsed or counted as unparseable, kappa as scikit-learn computes it, position checks."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from course_lib.eval.judge import cohen_kappa, pairwise_prompt, parse_choice, parse_grade, position_check, rubric_prompt


@pytest.mark.parametrize("reply, grade", [
    ("4", 4), ("Grade: 5.", 5), ("I would give it a 2", 2), ("3/5", None), ("From 1 to 5, I'd say 4", None),
    ("0", None), ("7", None), ("4.5", None), ("Excellent answer!", None), ("", None),
])
def test_a_grade_is_read_only_when_the_reply_holds_one_number_on_the_scale(reply: str, grade: int | None) -> None:
    assert parse_grade(reply) == grade


@pytest.mark.parametrize("reply, choice", [
    ("A", "A"), ("B.", "B"), ("Answer A", "A"), ("**B**", "B"), ("answer b", "B"), ("A and B are equal", None),
    ("A better answer would say the price", None), ("Both", None), ("", None),
])
def test_a_choice_is_read_only_when_it_is_the_whole_reply(reply: str, choice: str | None) -> None:
    assert parse_choice(reply) == choice


def test_prompts_hold_what_the_judge_must_see() -> None:
    prompt = rubric_prompt("Price?", "It costs $4.50.", "It costs $5.")
    assert "Price?" in prompt and "$4.50" in prompt and "$5." in prompt and "1" in prompt and "5" in prompt
    pair = pairwise_prompt("Price?", "ref", "first answer", "second answer")
    assert pair.index("Answer A: first answer") < pair.index("Answer B: second answer")


def test_kappa_equals_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        first = rng.integers(1, 6, size=30).tolist()
        second = [a if rng.random() < 0.6 else int(rng.integers(1, 6)) for a in first]
        assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second))
    assert cohen_kappa([1, 1, 0, 0], [1, 1, 1, 1]) == 0.0  # always "good": chance agreement only
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == -1.0
    assert np.isnan(cohen_kappa([1, 1], [1, 1]))


def test_position_check_finds_a_judge_that_always_picks_the_first_slot() -> None:
    always_a = position_check(["A"] * 4, ["A"] * 4)
    assert always_a.first_slot_rate == 1.0 and always_a.flip_rate == 1.0
    assert always_a.consistent_winners == (None,) * 4
    fair = position_check(["A", "B", "A", None], ["B", "A", "A", "B"])
    assert fair.consistent_winners == ("first", "second", None, None)
    assert fair.flip_rate == pytest.approx(1 / 3)  # the pair with an unparsed verdict does not count
    with pytest.raises(ValueError, match="one swapped verdict per pair"):
        position_check(["A"], [])


@pytest.mark.real_model
def test_option_probabilities_are_the_next_token_distribution_over_the_options(tiny_llama, smollm2_tokenizer) -> None:
    import torch

    from course_lib.eval.judge import option_probabilities
    from course_lib.infer.chat import chat_batch

    model = tiny_llama().eval()
    prompts = ["Grade this: fine", "Grade this much longer answer, please, from one to five"]
    probabilities = option_probabilities(model, smollm2_tokenizer, prompts, ["1", "2", "3", "4", "5"], batch_size=2)
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    alone = chat_batch(smollm2_tokenizer, prompts[:1])
    ids = [smollm2_tokenizer.encode(str(g), add_special_tokens=False)[0] for g in range(1, 6)]
    with torch.no_grad():
        expected = torch.softmax(model(**alone).logits[0, -1, ids], dim=-1).numpy()
    np.testing.assert_allclose(probabilities[0], expected, atol=1e-5)  # padded in a batch = alone
    np.testing.assert_allclose(option_probabilities(model, smollm2_tokenizer, prompts[::-1], ["1", "2", "3", "4", "5"],
                                                    batch_size=1)[1], probabilities[0], atol=1e-5)
    with pytest.raises(ValueError, match="'Excellent answer' is 3 tokens"):
        option_probabilities(model, smollm2_tokenizer, prompts, ["A", "Excellent answer"])
