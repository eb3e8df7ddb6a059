"""The Sakura Sushi reward model, built once per recipe and reused by the preference and RL lessons.

A sentence encoder with a one-number head, trained with TRL's RewardTrainer on
the preference pairs of ``preferences_train``. :func:`sakura_reward_model` trains
on a cache miss and reads the cache otherwise (:mod:`course_lib.recipes.artifacts`).
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.core.profiles import Profile
from course_lib.recipes.artifacts import cached_artifact
from course_lib.sakura.datasets import load_rows
from course_lib.train.preference import pairs_within, reward_config, train_reward_model

HISTORY_FILE = "history.json"
LEFT_OUT_FILE = "too_long.json"


@dataclass(frozen=True)
class RewardRecipe:
    """Everything that decides a trained reward model (the artefact's cache key)."""

    backbone: str = "minilm-l6-v2"
    learning_rate: float = 5e-5
    steps: int = 40
    batch_size: int = 16
    max_length: int = 128
    seed: int = 0


def sakura_reward_model(recipe: RewardRecipe, profile: Profile) -> Path:
    """A folder with the reward model, its tokenizer, history.json and the ids of pairs too long to train on."""

    def build(folder: Path, scratch: Path) -> None:
        import transformers

        # The score head is new and randomly initialised: seed it here, not from whatever the calling kernel drew
        # before, so the same recipe gives the same reward model in every lesson, test and CI run.
        transformers.set_seed(recipe.seed)
        model = load_model(recipe.backbone, model_class=transformers.AutoModelForSequenceClassification,
                           num_labels=1, device=profile.device)
        tokenizer = load_tokenizer(recipe.backbone)
        rows, too_long = pairs_within(load_rows("preferences_train"), tokenizer, recipe.max_length)
        config = reward_config(scratch, profile, max_steps=recipe.steps, learning_rate=recipe.learning_rate,
                               per_device_train_batch_size=recipe.batch_size, max_length=recipe.max_length,
                               seed=recipe.seed, data_seed=recipe.seed, lr_scheduler_type="linear", warmup_steps=0.1)
        history = train_reward_model(model, tokenizer, rows, config)
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        (folder / HISTORY_FILE).write_text(json.dumps(history, indent=2))
        (folder / LEFT_OUT_FILE).write_text(json.dumps(too_long))

    return cached_artifact("sakura-reward", recipe.__dict__, build, recipe_module=__name__)


def load_reward_model(folder: Path, device: str = "cpu") -> tuple[Any, Any]:
    """The trained reward model (eval mode) and its tokenizer, from :func:`sakura_reward_model`'s folder."""
    import transformers

    model = load_model(str(folder), model_class=transformers.AutoModelForSequenceClassification, device=device)
    return model, load_tokenizer(str(folder))
