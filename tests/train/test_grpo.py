"""GRPO through TRL on a tiny model: our group advantage equals the one TRL computed, and bad rewards stop it."""

from pathlib import Path

import datasets
import pytest
import torch

from course_lib.core.profiles import PROFILES
from course_lib.train.grpo import grpo_config, last_group_advantages, train_grpo
from course_lib.train.rl import group_advantages

GROUP = 4


def letters(completions, **kwargs):
    """A toy reward with ties and spread: the length of a completion, modulo 5."""
    return [float(len(c) % 5) for c in completions]


def tiny_run(tiny_llama, chat_tokenizer, tmp_path: Path, reward, steps: int = 1):
    dataset = datasets.Dataset.from_list([{"prompt": p} for p in ("Say hello.", "Name a fish.", "Count to three.")])
    config = grpo_config(tmp_path, PROFILES["cpu"], max_steps=steps, per_device_train_batch_size=2 * GROUP,
                         num_generations=GROUP, max_completion_length=6, learning_rate=1e-3, disable_tqdm=True)
    return train_grpo(tiny_llama(vocab_size=len(chat_tokenizer)), chat_tokenizer, dataset, [reward], config)


def test_our_group_advantage_equals_trls_on_the_same_rewards(tiny_llama, chat_tokenizer, tmp_path: Path) -> None:
    trainer, batches = tiny_run(tiny_llama, chat_tokenizer, tmp_path, letters, steps=2)
    assert len(batches) == 2
    for rewards, trl_advantages in batches:
        assert len(rewards) == 2 * GROUP and rewards.std() > 0  # the toy reward spread, so the comparison means something
        torch.testing.assert_close(group_advantages(rewards, GROUP), trl_advantages, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last_group_advantages(trainer)[1], batches[-1][1])


def test_config_is_cpu_safe() -> None:
    config = grpo_config(Path("/tmp/unused"), PROFILES["cpu"], num_generations=4, max_completion_length=8)
    assert not config.bf16 and config.use_cpu and not config.activation_checkpointing and config.report_to == []


@pytest.mark.parametrize(("reward", "message"), [
    (lambda completions, **kw: [1.0] * (len(completions) - 1), r"returned 7 rewards for 8 answers"),
    (lambda completions, **kw: [float("nan")] * len(completions), r"non-finite reward"),
])
def test_a_broken_reward_function_stops_training(tiny_llama, chat_tokenizer, tmp_path: Path, reward, message) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_run(tiny_llama, chat_tokenizer, tmp_path, reward)
