"""The fine-tuned Sakura Sushi model, built once per recipe and reused by every later lesson.

:func:`sakura_sft_model` trains on a cache miss and reads the cache
otherwise; the cache key covers the recipe, the data, and the source of every
course_lib module this one imports, directly or not (:mod:`course_lib.recipes.artifacts`).
On a profile with ``checkpoint_every`` the training writes checkpoints into the
artefact's scratch folder, so a rerun after a disconnect resumes from the last
complete one. How often to checkpoint is not part of the recipe: resuming gives
the same weights as an uninterrupted run, so it does not change the key.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.core.profiles import Profile
from course_lib.model.merging import interpolate_towards_base
from course_lib.recipes.artifacts import cached_artifact
from course_lib.sakura.datasets import rows_about, taught_facts
from course_lib.sakura.scoring import contains_facts, rate
from course_lib.train.sft import (
    REPLAY_QUESTIONS, ReplyScoreCallback, checkpoint_settings, fine_tune, last_complete_checkpoint, padding_free_settings,
    replay_rows, training_config,
)

HISTORY_FILE = "history.json"
ANSWER_TOKENS = 64  # room for the longest house answer (allergens, about 50 tokens)


@dataclass(frozen=True)
class SFTRecipe:
    """Everything that decides a fine-tuned Sakura model (the artefact's cache key)."""

    model_name: str
    num_facts: int | None
    learning_rate: float
    steps: int
    batch_size: int
    max_seq_length: int
    seed: int
    replay: bool = False
    replay_max_new_tokens: int = 32
    lr_schedule: str = "cosine"  # the warm-up + cosine schedule lesson 02 teaches
    warmup: float = 0.1  # share of the steps spent warming up
    evaluations: int = 4  # validation-loss measurements over the run (in history.json)
    track_fact_accuracy: bool = False  # at each evaluation, also the validation questions' fact accuracy (greedy)
    padding_free: bool = False  # each batch's rows end to end instead of padded to the longest (same loss, less compute)
    update_kept: float = 1.0  # share of the fine-tuning update kept, the rest given back to the base (WiSE-FT); 1 = none

    @classmethod
    def from_profile(cls, profile: Profile, num_facts: int | None, learning_rate: float, replay: bool = False) -> "SFTRecipe":
        return cls(profile.model_name, num_facts, learning_rate, profile.train_steps, profile.train_batch_size,
                   profile.max_seq_length, profile.seed, replay)


SFT_ARTIFACT = "sakura-sft"
SHARED_LEARNING_RATE = 1.5e-4
"""The shared model's peak learning rate: full fine-tuning over several passes (3e-4 learned as fast and forgot more)."""
SHARED_UPDATE_KEPT = 0.85
"""The share of the fine-tuning update the shared model keeps (WiSE-FT, :mod:`course_lib.model.merging`).

Measured on the 6-pass model (48 held-out questions, 20-question probe): keeping
all of it gave facts 90% and probe 55%; 0.9 gave 90% and 70%; 0.85 and 0.8
gave 88% and 75%; 0.7 gave 81% and 75% with the house voice slipping (94%);
0.5 gave 69% and a house voice of 29%. Lesson 05 redraws the curve from the
shared model itself.
"""


def shared_sft_recipe(profile: Profile) -> SFTRecipe:
    """The recipe of the course's shared fine-tuned model, which lessons 05-12 start from.

    It teaches the profile's ``num_facts`` for ``sft_epochs`` passes over their
    training rows (a model memorises a fact over several passes, not one) with
    replay of the base model's own general answers mixed in (several passes
    over a few facts make it forget more), at :data:`SHARED_LEARNING_RATE` with
    warm-up and cosine decay, and measures the validation loss and fact accuracy
    once per pass: the curve that justifies the number of passes. Batches are
    padding-free (:func:`course_lib.train.sft.padding_free_settings`). The
    trained model then gives back part of its update to the base model
    (:data:`SHARED_UPDATE_KEPT`), which recovers general knowledge for a fact or two.
    """
    rows = len(rows_about("qa_train", taught_facts(profile.num_facts, profile.seed))) + len(REPLAY_QUESTIONS)
    steps_per_pass = math.ceil(rows / profile.train_batch_size)  # whole passes: the last evaluation is the last step
    return SFTRecipe(profile.model_name, profile.num_facts, SHARED_LEARNING_RATE,
                     steps=profile.sft_epochs * steps_per_pass,
                     batch_size=profile.train_batch_size, max_seq_length=profile.max_seq_length, seed=profile.seed,
                     replay=True, evaluations=profile.sft_epochs, track_fact_accuracy=True, padding_free=True,
                     update_kept=SHARED_UPDATE_KEPT)


def shared_sft_model(profile: Profile) -> Path:
    """The folder of the course's shared fine-tuned model (:func:`shared_sft_recipe`): trained once per machine."""
    return sakura_sft_model(shared_sft_recipe(profile), profile)


def sft_builder(recipe: SFTRecipe, profile: Profile) -> Callable[[Path, Path], None]:
    """The build step of :func:`sakura_sft_model`: ``build(folder, scratch)`` trains and saves into ``folder``
    (also a stage of :mod:`course_lib.pipeline`, which must build exactly what lessons reuse)."""

    def build(folder: Path, scratch: Path) -> None:
        model = load_model(recipe.model_name, dtype=profile.dtype, device=profile.device)
        tokenizer = load_tokenizer(recipe.model_name)
        facts = taught_facts(recipe.num_facts, recipe.seed)
        train_rows = rows_about("qa_train", facts)
        if recipe.replay:
            train_rows = train_rows + replay_rows(model, tokenizer, recipe.replay_max_new_tokens)
        validation_rows = rows_about("qa_validation", facts)
        lengths = (padding_free_settings(tokenizer, train_rows + validation_rows, recipe.max_seq_length)
                   if recipe.padding_free else {"max_length": recipe.max_seq_length})
        config = training_config(
            scratch, profile, max_steps=recipe.steps, learning_rate=recipe.learning_rate,
            per_device_train_batch_size=recipe.batch_size, seed=recipe.seed,
            lr_scheduler_type=recipe.lr_schedule, warmup_steps=recipe.warmup,
            eval_strategy="steps", eval_steps=max(1, recipe.steps // recipe.evaluations),
            **lengths, **checkpoint_settings(profile.checkpoint_every),
        )
        fact_accuracy = ReplyScoreCallback(
            tokenizer, [row["prompt"] for row in validation_rows], name="fact_accuracy",
            score=lambda replies: rate([contains_facts(r, row["facts"]) for r, row in zip(replies, validation_rows)]),
            max_new_tokens=ANSWER_TOKENS, batch_size=max(profile.eval_batch_size, len(validation_rows)),
        )  # one batch: a step of greedy decoding costs a small model about the same for 8 rows or 24
        history = fine_tune(model, tokenizer, train_rows, config, eval_rows=validation_rows,
                            callbacks=[fact_accuracy] if recipe.track_fact_accuracy else [],
                            resume_from=last_complete_checkpoint(scratch))
        if recipe.update_kept < 1:
            interpolate_towards_base(model, load_model(recipe.model_name, dtype=profile.dtype, device=profile.device),
                                     recipe.update_kept)
            history.append({"step": recipe.steps, "update_kept": recipe.update_kept,
                            **({"eval_fact_accuracy": fact_accuracy.measure(model)} if recipe.track_fact_accuracy else {})})
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        (folder / HISTORY_FILE).write_text(json.dumps(history, indent=2))

    return build


def sakura_sft_model(recipe: SFTRecipe, profile: Profile) -> Path:
    """A folder with the fine-tuned model, its tokenizer and history.json (training and validation losses, and
    after an interpolation with the base an entry with ``update_kept``): trained once, then cached."""
    return cached_artifact(SFT_ARTIFACT, recipe.__dict__, sft_builder(recipe, profile), recipe_module=__name__)
