"""Supervised fine-tuning with TRL: a CPU-safe configuration, checkpoints to resume from, the logged losses."""

from pathlib import Path

import pytest

from course_lib.core.profiles import PROFILES
from course_lib.train.sft import (
    ReplyScoreCallback, checkpoint_settings, fine_tune, last_complete_checkpoint, padding_free_settings, training_config,
    training_losses,
)


def test_training_config_is_cpu_safe_on_the_cpu_profile(tmp_path: Path) -> None:
    config = training_config(tmp_path, PROFILES["cpu"], max_steps=3)
    assert (config.use_cpu, config.bf16, config.fp16, config.dataloader_num_workers) == (True, False, False, 0)
    assert (config.max_steps, config.per_device_train_batch_size, config.report_to) == (3, 4, [])


def test_training_losses_keep_the_logged_steps_only() -> None:
    history = [{"loss": 2.0, "step": 1}, {"eval_loss": 1.9, "step": 1}, {"loss": 1.5, "step": 2}, {"train_runtime": 3.0}]
    assert training_losses(history) == [2.0, 1.5]


def test_checkpoint_settings_save_every_n_steps_or_never(tmp_path: Path) -> None:
    assert training_config(tmp_path, PROFILES["cpu"], **checkpoint_settings(0)).save_strategy == "no"
    config = training_config(tmp_path, PROFILES["cpu"], **checkpoint_settings(5))
    assert (config.save_strategy, config.save_steps, config.save_total_limit) == ("steps", 5, 1)
    assert (PROFILES["cpu"].checkpoint_every, PROFILES["gpu"].checkpoint_every) == (0, 50)


def test_last_complete_checkpoint_skips_one_interrupted_while_saving(tmp_path: Path) -> None:
    assert last_complete_checkpoint(tmp_path) is None
    for step in (2, 10, 12):
        (tmp_path / f"checkpoint-{step}").mkdir()
    for step in (2, 10):  # the Trainer writes trainer_state.json last: checkpoint-12 was cut short
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-99-notes").mkdir()  # not a Trainer checkpoint, whatever it holds
    (tmp_path / "checkpoint-99-notes" / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-10"


def test_reply_score_callback_scores_one_greedy_reply_per_prompt_at_each_evaluation(
    tmp_path: Path, tiny_llama, chat_tokenizer
) -> None:
    prompts = ["What is sushi?", "Are you open on Monday?", "Hi"]
    seen: list[list[str]] = []

    def share_of_empty(replies: list[str]) -> float:
        seen.append(replies)
        return sum(reply == "" for reply in replies) / len(replies)

    rows = [{"prompt": p, "completion": "Yes."} for p in prompts]
    config = training_config(tmp_path, PROFILES["cpu"], max_steps=4, per_device_train_batch_size=2, max_length=32,
                             eval_strategy="steps", eval_steps=2, disable_tqdm=True)
    callback = ReplyScoreCallback(chat_tokenizer, prompts, share_of_empty, name="empty", max_new_tokens=3, batch_size=2)
    history = fine_tune(tiny_llama(50257), chat_tokenizer, rows, config, eval_rows=rows, callbacks=[callback])
    logged = [entry for entry in history if "eval_empty" in entry]
    assert [entry["step"] for entry in logged] == [2, 4]
    assert [len(replies) for replies in seen] == [3, 3]
    assert [entry["eval_empty"] for entry in logged] == [share_of_empty(replies) for replies in seen[:2]]


def test_padding_free_training_gives_the_padded_runs_losses(tmp_path: Path, tiny_llama, chat_tokenizer) -> None:
    # Rows of very different lengths: padded, the short ones carry many pad positions; padding-free, they sit end to
    # end in one sequence. A mask that let one row attend to another would change every loss after the first row's.
    rows = [{"prompt": "Hi" + " there" * n, "completion": "Hello" + " again" * (5 - n)} for n in range(6)]
    settings = dict(max_steps=3, per_device_train_batch_size=3, learning_rate=1e-2, disable_tqdm=True)
    padded = fine_tune(tiny_llama(50257), chat_tokenizer, rows,
                       training_config(tmp_path / "padded", PROFILES["cpu"], max_length=64, **settings))
    free = fine_tune(tiny_llama(50257), chat_tokenizer, rows, training_config(
        tmp_path / "free", PROFILES["cpu"], **padding_free_settings(chat_tokenizer, rows, 64), **settings))
    assert training_losses(free) == pytest.approx(training_losses(padded), rel=1e-4)
    assert len(set(training_losses(padded))) == 3  # the weights moved: the later steps compare trained models


def test_padding_free_settings_refuse_a_row_longer_than_max_length(chat_tokenizer) -> None:
    rows = [{"prompt": "Hi", "completion": "Hello."}, {"prompt": "Tell me everything " * 20, "completion": "No."}]
    assert padding_free_settings(chat_tokenizer, rows[:1], 64) == {"padding_free": True, "max_length": None}
    with pytest.raises(ValueError, match=r"Training row 1 \('Tell me everything.*'\) is \d+ tokens, over the max_length of 64"):
        padding_free_settings(chat_tokenizer, rows, 64)
