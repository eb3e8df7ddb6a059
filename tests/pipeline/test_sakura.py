"""Sakura Sushi's pipeline: its stages share lesson 05's artefact and rebuild only downstream of a changed recipe."""

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from course_lib.core.profiles import get_profile
from course_lib.pipeline.__main__ import main
from course_lib.pipeline.sakura import (
    PreferenceRecipe, SakuraPipeline, held_out_pairs, held_out_rows, paired_change, preference_margins, sakura_stages,
)
from course_lib.pipeline.stages import downstream, stage_folders
from course_lib.recipes.artifacts import artifact_folder
from course_lib.recipes.sft import SFT_ARTIFACT

PROFILE = get_profile("cpu")


def test_the_fine_tuning_stage_is_the_artefact_the_lessons_reuse() -> None:
    pipeline = SakuraPipeline.from_profile(PROFILE)
    lessons_folder = artifact_folder(SFT_ARTIFACT, pipeline.sft.__dict__, "course_lib.recipes.sft")
    assert stage_folders(sakura_stages(pipeline, PROFILE))[SFT_ARTIFACT] == lessons_folder


def test_a_new_preference_recipe_moves_only_the_stages_after_it() -> None:
    pipeline = SakuraPipeline.from_profile(PROFILE)
    changed = replace(pipeline, preference=PreferenceRecipe(beta=0.5))
    before = stage_folders(sakura_stages(pipeline, PROFILE))
    after = stage_folders(sakura_stages(changed, PROFILE))
    moved = [name for name in before if before[name] != after[name]]
    assert moved == downstream(sakura_stages(pipeline, PROFILE), "sakura-dpo") == ["sakura-dpo", "sakura-eval", "sakura-ship"]


def test_held_out_rows_ask_one_question_per_taught_fact() -> None:
    rows = held_out_rows(PROFILE.num_facts, PROFILE.seed)
    assert len(rows) == PROFILE.num_facts
    assert len({row["completion"] for row in rows}) == len(rows)


def test_the_command_plans_the_default_pipeline(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))  # an empty cache: every stage is to be built
    assert main(["--plan", "--profile", "cpu"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.strip().splitlines()]
    assert lines == [[stage.name, "build"] for stage in sakura_stages(SakuraPipeline.from_profile(PROFILE), PROFILE)]


def test_held_out_pairs_sample_every_rejection_kind_and_follow_the_seed() -> None:
    pairs = held_out_pairs(5, seed=0)
    kinds = Counter(pair["rejection_kind"] for pair in pairs)
    assert kinds == {"rambling": 5, "rude": 5, "wrong_fact": 5, "unsafe_allergy": 5}
    ids = [pair["id"] for pair in pairs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert held_out_pairs(5, seed=0) == pairs and held_out_pairs(5, seed=1) != pairs
    assert Counter(p["rejection_kind"] for p in held_out_pairs(12, seed=0))["unsafe_allergy"] == 6  # all there are


def test_paired_change_pairs_the_candidates_item_by_item() -> None:
    scores = {"a": {"correct": [True, True, False, True], "preference_margins": [2.0, -1.0, 0.5]},
              "b": {"correct": [False, True, False, False], "preference_margins": [1.0, -1.0, -0.5]}}
    difference = paired_change(scores, "a", "b")
    assert difference.value == 0.5 and difference.n == 4 and difference.low <= 0.5 <= difference.high
    assert paired_change(scores, "b", "a").value == -0.5
    margins = paired_change(scores, "a", "b", outcome="preference_margins")
    assert margins.value == pytest.approx(2 / 3) and margins.n == 3


def test_paired_change_names_the_outcomes_it_knows() -> None:
    with pytest.raises(ValueError, match="unknown outcome 'replies'.*preference_margins"):
        paired_change({"a": {}, "b": {}}, "a", "b", outcome="replies")


def test_preference_margins_are_chosen_minus_rejected_log_likelihoods(tiny_llama, chat_tokenizer) -> None:
    model = tiny_llama(vocab_size=len(chat_tokenizer)).eval()
    pairs = [{"prompt": "Price of the Salmon Nigiri?", "chosen": "It costs $4.50.", "rejected": "Ugh, look it up."},
             {"prompt": "Is the Tuna Roll spicy?", "chosen": "No, it is mild.", "rejected": "No, it is mild."},
             {"prompt": "When do you open?", "chosen": "At noon.", "rejected": "Well, that is a long story, so..."}]
    margins = preference_margins(model, chat_tokenizer, pairs, batch_size=2)
    swapped = preference_margins(model, chat_tokenizer, [pair | {"chosen": pair["rejected"], "rejected": pair["chosen"]}
                                                         for pair in pairs], batch_size=3)
    assert len(margins) == 3 and margins[1] == 0.0  # the same answer twice: no preference
    assert margins == pytest.approx([-m for m in swapped], abs=1e-3) and abs(margins[0]) > 1e-3
    # a longer rejected answer has more tokens to pay for, so a random model prefers the short chosen one
    assert margins[2] > 0
