"""The cached Sakura SFT model: trained once per recipe, read from the cache, resumed after a disconnect."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

import course_lib.recipes.sft as recipes_sft
from course_lib.core.profiles import PROFILES
from course_lib.recipes.sft import (
    HISTORY_FILE, SHARED_LEARNING_RATE, SHARED_UPDATE_KEPT, SFTRecipe, sakura_sft_model, shared_sft_recipe,
)
from course_lib.sakura.datasets import rows_about, taught_facts
from course_lib.train.sft import REPLAY_QUESTIONS, fine_tune, training_losses

GPT2_VOCAB = 50257


@pytest.fixture(autouse=True)
def _tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_llama, chat_tokenizer) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(recipes_sft, "load_model", lambda *a, **k: tiny_llama(GPT2_VOCAB))
    monkeypatch.setattr(recipes_sft, "load_tokenizer", lambda name: chat_tokenizer)


class Disconnect(TrainerCallback):
    """Ends training with an error once ``after_steps`` optimizer steps are done, as a dropped session does."""

    def __init__(self, after_steps: int) -> None:
        self.after_steps = after_steps

    def on_step_begin(self, args, state, control, **kwargs) -> None:
        if state.global_step == self.after_steps:
            raise ConnectionError("the runtime disconnected")


class StepCounter(TrainerCallback):
    """Counts the optimizer steps a run actually trains."""

    def __init__(self) -> None:
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self.steps += 1


def test_recipe_trains_once_then_comes_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = PROFILES["cpu"].with_overrides(train_steps=4, train_batch_size=2, num_threads=1)
    recipe = SFTRecipe.from_profile(profile, num_facts=2, learning_rate=1e-2)
    folder = sakura_sft_model(recipe, profile)
    losses = training_losses(json.loads((folder / HISTORY_FILE).read_text()))
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    assert not list(folder.parent.glob("*.resume")), "the scratch folder outlived a complete build"
    monkeypatch.setattr(recipes_sft, "fine_tune", lambda *a, **k: pytest.fail("a cache hit must not train"))
    assert sakura_sft_model(recipe, profile) == folder


def test_a_different_recipe_is_a_different_artifact() -> None:
    profile = PROFILES["cpu"].with_overrides(train_steps=1, train_batch_size=2, num_threads=1)
    first = sakura_sft_model(SFTRecipe.from_profile(profile, 2, 1e-3), profile)
    second = sakura_sft_model(SFTRecipe.from_profile(profile, 2, 2e-3), profile)
    assert first != second and first.exists() and second.exists()


def test_an_interrupted_build_resumes_to_the_weights_of_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = PROFILES["cpu"].with_overrides(train_steps=6, train_batch_size=2, num_threads=1)
    checkpointing = plain.with_overrides(checkpoint_every=2)
    recipe = SFTRecipe.from_profile(plain, num_facts=2, learning_rate=1e-2)
    assert SFTRecipe.from_profile(checkpointing, num_facts=2, learning_rate=1e-2) == recipe  # same cache key

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "uninterrupted"))
    reference = sakura_sft_model(recipe, plain)

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "interrupted"))
    monkeypatch.setattr(recipes_sft, "fine_tune",
                        lambda *a, callbacks, **k: fine_tune(*a, callbacks=callbacks + [Disconnect(3)], **k))
    with pytest.raises(ConnectionError):
        sakura_sft_model(recipe, checkpointing)
    artifacts = tmp_path / "interrupted" / "artifacts"
    assert sorted(p.suffix for p in artifacts.iterdir()) == [".lock", ".resume"]  # no artefact, no staging
    (scratch,) = artifacts.glob("*.resume")
    assert sorted(p.name for p in scratch.glob("checkpoint-*")) == ["checkpoint-2"]

    resumed_from, counter = [], StepCounter()

    def spy(*args, resume_from=None, callbacks, **kwargs):
        resumed_from.append(resume_from.name if resume_from else "")
        return fine_tune(*args, resume_from=resume_from, callbacks=callbacks + [counter], **kwargs)

    monkeypatch.setattr(recipes_sft, "fine_tune", spy)
    resumed = sakura_sft_model(recipe, checkpointing)
    assert resumed_from == ["checkpoint-2"] and counter.steps == 4  # steps 3 to 6 only
    assert not scratch.exists()
    expected, actual = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
    losses = [training_losses(json.loads((folder / HISTORY_FILE).read_text())) for folder in (reference, resumed)]
    assert losses[0] == losses[1] and len(losses[0]) == 6


def test_the_shared_recipe_makes_the_profiles_passes_over_its_facts_and_the_replay_rows() -> None:
    for name in ("cpu", "gpu"):
        profile = PROFILES[name]
        recipe = shared_sft_recipe(profile)
        rows = len(rows_about("qa_train", taught_facts(profile.num_facts, profile.seed))) + len(REPLAY_QUESTIONS)
        assert recipe.steps == profile.sft_epochs * -(-rows // recipe.batch_size)  # whole passes, rounded up
        assert recipe.steps % recipe.evaluations == 0  # the last evaluation falls on the last step
        assert (recipe.replay, recipe.track_fact_accuracy, recipe.evaluations) == (True, True, profile.sft_epochs)
        assert recipe.update_kept == SHARED_UPDATE_KEPT < 1
        assert (recipe.learning_rate, recipe.num_facts, recipe.seed) == (SHARED_LEARNING_RATE, profile.num_facts, profile.seed)
    assert len(taught_facts(PROFILES["gpu"].num_facts, 42)) == 153  # the gpu profile teaches every fact
    assert shared_sft_recipe(PROFILES["cpu"].with_overrides(sft_epochs=2)).steps < shared_sft_recipe(PROFILES["cpu"]).steps


def test_a_tracked_run_logs_the_validation_fact_accuracy_at_every_evaluation() -> None:
    profile = PROFILES["cpu"].with_overrides(train_batch_size=2, num_threads=1)
    recipe = SFTRecipe(profile.model_name, num_facts=2, learning_rate=1e-2, steps=4, batch_size=2, max_seq_length=64,
                       seed=0, evaluations=2, track_fact_accuracy=True)
    history = json.loads((sakura_sft_model(recipe, profile) / HISTORY_FILE).read_text())
    tracked = [(entry["step"], entry["eval_fact_accuracy"]) for entry in history if "eval_fact_accuracy" in entry]
    assert [step for step, _ in tracked] == [2, 4] == [entry["step"] for entry in history if "eval_loss" in entry]
    assert all(0 <= accuracy <= 1 for _, accuracy in tracked)
    untracked = json.loads((sakura_sft_model(SFTRecipe(**(recipe.__dict__ | {"track_fact_accuracy": False})), profile)
                            / HISTORY_FILE).read_text())
    assert not any("eval_fact_accuracy" in entry for entry in untracked)


def test_a_recipe_that_keeps_part_of_the_update_saves_the_interpolated_model_and_logs_it(tiny_llama) -> None:
    profile = PROFILES["cpu"].with_overrides(train_batch_size=2, num_threads=1)
    recipe = SFTRecipe(profile.model_name, num_facts=2, learning_rate=1e-2, steps=2, batch_size=2, max_seq_length=64,
                       seed=0, evaluations=1, track_fact_accuracy=True)
    tuned = load_file(sakura_sft_model(recipe, profile) / "model.safetensors")
    folder = sakura_sft_model(SFTRecipe(**(recipe.__dict__ | {"update_kept": 0.25})), profile)
    base = tiny_llama(GPT2_VOCAB).state_dict()
    for name, tensor in load_file(folder / "model.safetensors").items():
        torch.testing.assert_close(tensor, base[name] + 0.25 * (tuned[name] - base[name]), rtol=1e-5, atol=1e-6)
    last = json.loads((folder / HISTORY_FILE).read_text())[-1]
    assert last["update_kept"] == 0.25 and last["step"] == 2 and 0 <= last["eval_fact_accuracy"] <= 1
