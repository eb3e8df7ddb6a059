"""Supervised fine-tuning with TRL: a CPU-safe configuration and the logged losses."""

from pathlib import Path

from course_lib.core.profiles import PROFILES
from course_lib.train.sft import training_config, training_losses


def test_training_config_is_cpu_safe_on_the_cpu_profile(tmp_path: Path) -> None:
    config = training_config(tmp_path, PROFILES["cpu"], max_steps=3)
    assert (config.use_cpu, config.bf16, config.fp16, config.dataloader_num_workers) == (True, False, False, 0)
    assert (config.max_steps, config.per_device_train_batch_size, config.report_to) == (3, 4, [])


def test_training_losses_keep_the_logged_steps_only() -> None:
    history = [{"loss": 2.0, "step": 1}, {"eval_loss": 1.9, "step": 1}, {"loss": 1.5, "step": 2}, {"train_runtime": 3.0}]
    assert training_losses(history) == [2.0, 1.5]
