"""Sakura Sushi's pipeline: its stages share lesson 05's artefact and rebuild only downstream of a changed recipe."""

from dataclasses import replace
from pathlib import Path

import pytest

from course_lib.core.profiles import get_profile
from course_lib.pipeline.__main__ import main
from course_lib.pipeline.sakura import (
    PreferenceRecipe, SakuraPipeline, accuracy_difference, held_out_rows, sakura_stages,
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


def test_accuracy_difference_pairs_the_candidates_question_by_question() -> None:
    scores = {"a": {"correct": [True, True, False, True]}, "b": {"correct": [False, True, False, False]}}
    difference = accuracy_difference(scores, "a", "b")
    assert difference.value == 0.5 and difference.n == 4 and difference.low <= 0.5 <= difference.high
    assert accuracy_difference(scores, "b", "a").value == -0.5
