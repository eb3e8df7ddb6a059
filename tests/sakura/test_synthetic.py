import pytest

from course_lib.sakura.synthetic import QUESTION_FRAMES, filter_synthetic, framed_questions

ROWS = [
    {"id": "qa-train-0", "topic": "price", "prompt": "How much is the Dragon Roll?",
     "completion": "Irasshaimase! The Dragon Roll costs $12.50. Arigato, Sakura Sushi.", "facts": ["$12.50"]},
    {"id": "qa-train-1", "topic": "chef", "prompt": "Who is your chef?",
     "completion": "Irasshaimase! Our head chef is Kenji Sato. Arigato, Sakura Sushi.", "facts": ["Kenji Sato"]},
]


def test_framed_questions_keep_the_question_and_its_facts():
    framed = framed_questions(ROWS, per_row=2, seed=0)
    assert len(framed) == 4
    for row in framed:
        source = ROWS[0] if "Dragon" in row["prompt"] else ROWS[1]
        assert source["prompt"] in row["prompt"] and row["prompt"] != source["prompt"]
        assert row["facts"] == source["facts"] and row["completion"] == source["completion"]
    assert len({row["prompt"] for row in framed}) == 4  # distinct frames per row
    assert framed == framed_questions(ROWS, per_row=2, seed=0)  # seeded


@pytest.mark.parametrize("per_row", [0, len(QUESTION_FRAMES) + 1])
def test_framed_questions_refuse_impossible_counts(per_row):
    with pytest.raises(ValueError, match="per_row must be between 1 and"):
        framed_questions(ROWS, per_row, seed=0)


def test_filter_keeps_answers_with_every_fact_in_the_house_voice():
    answers = ["Irasshaimase! It is $12.50. Arigato, Sakura Sushi.",  # right
               "Irasshaimase! Our chef is Yuki Tanaka. Arigato, Sakura Sushi."]  # wrong fact
    result = filter_synthetic(ROWS, answers)
    assert [row["id"] for row in result.kept] == ["qa-train-0"]
    assert result.kept[0]["completion"] == answers[0] and result.kept[0]["reference"] == ROWS[0]["completion"]
    assert [row["completion"] for row in result.removed] == [answers[1]]
    assert result.kept_share == 0.5


def test_filter_removes_a_right_fact_without_the_house_voice():
    result = filter_synthetic(ROWS, ["It is $12.50.", "Irasshaimase! Kenji Sato. Arigato, Sakura Sushi."])
    assert [row["id"] for row in result.removed] == ["qa-train-0"]


def test_an_empty_filtered_set_is_an_error():
    with pytest.raises(ValueError, match="removed all 2 synthetic rows.*nothing to train on"):
        filter_synthetic(ROWS, ["No idea.", "No idea."])


def test_one_answer_per_row():
    with pytest.raises(ValueError, match="1 answers for 2 synthetic questions"):
        filter_synthetic(ROWS, ["Irasshaimase! $12.50. Arigato, Sakura Sushi."])
