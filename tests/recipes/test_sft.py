"""The cached Sakura SFT model: trained once per recipe, then read from the cache."""

import json
from pathlib import Path

import pytest

import course_lib.recipes.sft as recipes_sft
from course_lib.core.profiles import PROFILES
from course_lib.recipes.sft import HISTORY_FILE, SFTRecipe, sakura_sft_model
from course_lib.train.sft import training_losses

pytestmark = pytest.mark.real_model  # SmolLM2's tokenizer


@pytest.fixture(autouse=True)
def _tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_llama, smollm2_tokenizer) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(recipes_sft, "load_model", lambda *a, **k: tiny_llama())
    monkeypatch.setattr(recipes_sft, "load_tokenizer", lambda name: smollm2_tokenizer)


def test_recipe_trains_once_then_comes_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = PROFILES["cpu"].with_overrides(train_steps=4, train_batch_size=2, num_threads=1)
    recipe = SFTRecipe.from_profile(profile, num_facts=2, learning_rate=1e-2)
    folder = sakura_sft_model(recipe, profile)
    losses = training_losses(json.loads((folder / HISTORY_FILE).read_text()))
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    monkeypatch.setattr(recipes_sft, "fine_tune", lambda *a, **k: pytest.fail("a cache hit must not train"))
    assert sakura_sft_model(recipe, profile) == folder


def test_a_different_recipe_is_a_different_artifact() -> None:
    profile = PROFILES["cpu"].with_overrides(train_steps=1, train_batch_size=2, num_threads=1)
    first = sakura_sft_model(SFTRecipe.from_profile(profile, 2, 1e-3), profile)
    second = sakura_sft_model(SFTRecipe.from_profile(profile, 2, 2e-3), profile)
    assert first != second and first.exists() and second.exists()
