"""The model card: scores with their intervals, license and recipe written; unmeasured scores refused."""

import math
from typing import Any

import pytest

from course_lib.eval.intervals import Estimate, proportion_interval
from course_lib.ship.card import model_card

FACTS: dict[str, Any] = {
    "model_name": "sakura-sushi-135m",
    "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "license": "apache-2.0",
    "data": "Question-answer pairs about the Sakura Sushi menu, opening hours and prices.",
    "recipe": {"method": "LoRA (r=8) on q_proj, v_proj", "learning_rate": 0.0002, "steps": 60},
    "limitations": ["Answers only about Sakura Sushi.", "Invents prices it was not taught."],
}


def test_the_card_holds_each_score_with_its_interval_the_license_and_the_recipe() -> None:
    exact, judged = proportion_interval(6, 8), proportion_interval(30, 40)
    card = model_card(**FACTS, scores={"exact match": exact, "judge agreement": judged})
    text = str(card)
    assert f"| exact match | {exact} |" in text and f"| judge agreement | {judged} |" in text
    assert str(exact) == "0.75 [0.41, 0.93] (n=8)"
    assert card.data.license == "apache-2.0" and card.data.base_model == FACTS["base_model"]
    assert "- **learning_rate**: 0.0002" in text and "- **steps**: 60" in text
    assert "- Invents prices it was not taught." in text and FACTS["data"] in text
    assert text.startswith("---\n") and "license: apache-2.0" in text  # the YAML header the Hub reads


def test_the_card_saves_as_the_readme(tmp_path) -> None:
    card = model_card(**FACTS, scores={"exact match": proportion_interval(6, 8)})
    card.save(tmp_path / "README.md")
    assert "0.75 [0.41, 0.93] (n=8)" in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize("score, reason", [
    (None, "None, not an Estimate"),
    (0.75, "0.75, not an Estimate"),
    (Estimate(math.nan, 0.1, 0.9, 8), "not a finite number"),
    (Estimate(0.75, math.nan, math.nan, 8), "not a finite number"),
    (Estimate(0.75, 0.41, 0.93, 0), "n=0"),
    (Estimate(0.95, 0.41, 0.93, 8), "outside its interval"),
])
def test_a_score_that_was_not_measured_is_refused_by_name(score: Any, reason: str) -> None:
    scores = {"exact match": proportion_interval(6, 8), "helpfulness": score}
    with pytest.raises(ValueError, match=rf"Score 'helpfulness' was not measured: .*{reason}"):
        model_card(**FACTS, scores=scores)


def test_a_card_without_scores_or_limitations_is_refused() -> None:
    with pytest.raises(ValueError, match="No scores"):
        model_card(**FACTS, scores={})
    with pytest.raises(ValueError, match="No limitations"):
        model_card(**(FACTS | {"limitations": []}), scores={"exact match": proportion_interval(6, 8)})
    with pytest.raises(ValueError, match="license is empty"):
        model_card(**(FACTS | {"license": " "}), scores={"exact match": proportion_interval(6, 8)})
