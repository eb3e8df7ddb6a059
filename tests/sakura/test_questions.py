"""Answer variants the evaluation lesson measures metrics with."""

import random

import pytest

from course_lib.sakura.menu import all_facts
from course_lib.sakura.questions import paraphrased_answer, wrong_answer
from course_lib.sakura.scoring import contains_facts, follows_house_voice, states_facts

PARAPHRASED = [fact for fact in all_facts() if fact["topic"] not in ("address", "phone", "reservations", "delivery",
                                                                   "payment", "chef")]


def test_a_paraphrase_keeps_every_fact_and_the_house_voice_but_not_the_wording() -> None:
    for fact in PARAPHRASED:
        answer = paraphrased_answer(fact)
        assert states_facts(answer, list(fact["facts"])), answer  # in whole words, not thanks to the kitchen list
        assert follows_house_voice(answer)
        assert fact["body"] not in answer


def test_a_wrong_answer_misses_a_fact_of_the_reference() -> None:
    for fact in PARAPHRASED:
        assert not contains_facts(wrong_answer(fact, random.Random(0)), list(fact["facts"]))


def test_policies_have_no_paraphrase() -> None:
    with pytest.raises(ValueError, match="No paraphrase for topic 'chef'"):
        paraphrased_answer(next(fact for fact in all_facts() if fact["topic"] == "chef"))
