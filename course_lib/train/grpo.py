"""GRPO with TRL on a verifiable task: CPU-safe settings, the trainer, and the advantages it computed.

GRPO (Shao et al., 2024) samples a group of answers per prompt and uses each
answer's reward relative to its group as the advantage, so it needs no value
head; with a reward a program can check (an order total is right or wrong), it
needs no reward model either. The group advantage is written out in
:func:`course_lib.train.rl.group_advantages`; :func:`last_group_advantages`
reads what TRL computed, so the two can be compared on the same rewards.
"""

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from course_lib.core.profiles import Profile
from course_lib.train.preference import NO_CHECKPOINTING
from course_lib.train.rl import checked_reward_function
from course_lib.train.sft import trainer_settings


def grpo_config(output_dir: Path, profile: Profile, **overrides: Any) -> Any:
    """A GRPOConfig that runs anywhere: sized by the profile, float32 on CPU, no activation checkpointing.

    TRL's defaults would generate 8 answers of up to 512 tokens per prompt at a learning rate of 1e-6
    (meant for full fine-tuning of large models); pass ``num_generations``, ``max_completion_length``
    and ``learning_rate`` for the task. ``per_device_train_batch_size`` counts answers, not prompts,
    and must be a multiple of ``num_generations``.
    """
    from trl import GRPOConfig

    settings = trainer_settings(output_dir, profile) | NO_CHECKPOINTING
    settings.pop("max_length")  # GRPO bounds prompts and answers separately
    return GRPOConfig(**(settings | {"log_completions": False} | overrides))


def train_grpo(model: Any, tokenizer: Any, dataset: Any, reward_functions: list[Any], config: Any,
               peft_config: Any = None) -> tuple[Any, list[tuple[Tensor, Tensor]]]:
    """GRPO with TRL's GRPOTrainer; every reward function is checked (one finite reward per answer).

    ``dataset`` has a ``prompt`` column (text or chat messages) and whatever columns the reward
    functions read (TRL passes them as keyword arguments). Returns the trained trainer and, for every
    step, the rewards of its batch of answers and the advantages TRL computed from them
    (:func:`last_group_advantages`), to compare with :func:`course_lib.train.rl.group_advantages`.
    """
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    trainer = GRPOTrainer(model=model, args=config, processing_class=tokenizer, train_dataset=dataset,
                          reward_funcs=[checked_reward_function(f) for f in reward_functions], peft_config=peft_config)
    batches: list[tuple[Tensor, Tensor]] = []

    class RecordBatches(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            batches.append(last_group_advantages(trainer))

    trainer.add_callback(RecordBatches())
    trainer.train()
    trainer.model.eval()
    return trainer, batches


def last_group_advantages(trainer: Any) -> tuple[Tensor, Tensor]:
    """The rewards (summed over reward functions) and the advantages TRL computed for its last batch of answers."""
    logs = trainer._logs  # TRL keeps the last generation batch here for its completion tables
    rewards = torch.tensor([list(values) for values in logs["rewards"].values()]).sum(dim=0)
    return rewards, torch.tensor(list(logs["advantages"]))
