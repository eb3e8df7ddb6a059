"""The cached Sakura reward model: trained once per recipe on the real MiniLM, then read from the cache."""

import json
from pathlib import Path

import pytest
import torch

import course_lib.recipes.reward as recipes_reward
from course_lib.core.profiles import PROFILES
from course_lib.recipes.reward import HISTORY_FILE, LEFT_OUT_FILE, RewardRecipe, load_reward_model, sakura_reward_model
from course_lib.sakura.datasets import load_rows
from course_lib.train.preference import reward_scores


@pytest.mark.real_model
def test_reward_model_trains_once_then_comes_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    profile = PROFILES["cpu"].with_overrides(num_threads=1)
    recipe = RewardRecipe(steps=3, batch_size=4, max_length=40)
    folder = sakura_reward_model(recipe, profile)
    history = json.loads((folder / HISTORY_FILE).read_text())
    assert [entry["step"] for entry in history if "loss" in entry] == [1, 2, 3]
    too_long = json.loads((folder / LEFT_OUT_FILE).read_text())
    assert 0 < len(too_long) < len(load_rows("preferences_train"))  # 40 tokens leave the long allergy answers out

    model, tokenizer = load_reward_model(folder)
    rows = load_rows("preferences_test")[:4]
    scores = reward_scores(model, tokenizer, [r["prompt"] for r in rows], [r["chosen"] for r in rows])
    assert scores.shape == (4,) and torch.isfinite(scores).all()

    monkeypatch.setattr(recipes_reward, "train_reward_model", lambda *a, **k: pytest.fail("a cache hit must not train"))
    assert sakura_reward_model(recipe, profile) == folder


@pytest.mark.real_model
def test_the_random_score_head_does_not_depend_on_what_the_caller_drew_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two builds of one recipe after different draws from torch's global generator save the same weights
    (the untrained head is the only random part; training is skipped to isolate it)."""
    from safetensors.torch import load_file

    monkeypatch.setattr(recipes_reward, "train_reward_model", lambda *args, **kwargs: [])
    profile = PROFILES["cpu"].with_overrides(num_threads=1)
    weights = []
    for draw in (1, 2):
        monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / f"cache-{draw}"))
        torch.manual_seed(draw)
        torch.rand(draw)
        folder = sakura_reward_model(RewardRecipe(steps=1), profile)
        weights.append(load_file(str(folder / "model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert weights[0]["classifier.weight"].abs().sum() > 0
