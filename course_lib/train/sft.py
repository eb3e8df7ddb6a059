"""Supervised fine-tuning with TRL's SFTTrainer: CPU-safe configuration, training, replay data.

Training uses conversational prompt-completion rows
(:func:`course_lib.data.chat_format.to_conversational`), so the loss covers
the assistant's answer only. The cached Sakura model later lessons reuse is
built by :mod:`course_lib.recipes.sft`. With :func:`checkpoint_settings`,
training writes the Trainer's checkpoints (weights, optimizer, scheduler, RNG
states) and :func:`fine_tune` can resume from the last complete one: the
result equals an uninterrupted run's.
"""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
from transformers import TrainerCallback

from course_lib.core.profiles import Profile
from course_lib.data.chat_format import completion_only_labels, to_conversational
from course_lib.infer.chat import generate_replies

# General requests for replay: answered by the base model itself, mixed into training so that
# fine-tuning keeps rehearsing what the model could already do. None of them is in the probe.
REPLAY_QUESTIONS = (
    "Name three primary colours.",
    "What is the opposite of cold?",
    "How many minutes are in an hour?",
    "What do cows drink?",
    "Give me a synonym for happy.",
    "What is the capital of Spain?",
    "What is 10 plus 5?",
    "Which season comes after winter?",
    "What do you call a baby cat?",
    "What is the largest continent?",
    "Write one sentence about the sea.",
    "What is water made of?",
    "Who invented the telephone?",
    "What is the main ingredient of bread?",
    "How many sides does a triangle have?",
    "What is the color of grass?",
)


def conversational(rows: list[dict[str, Any]]) -> datasets.Dataset:
    """Rows as TRL's conversational prompt-completion data set (completion-only loss)."""
    return datasets.Dataset.from_list([to_conversational(row) for row in rows])


def trainer_settings(output_dir: Path, profile: Profile) -> dict[str, Any]:
    """Settings every course trainer shares: sized by the profile, seeded, no reports, nothing saved, CPU-safe,
    the fused AdamW step (the default per-tensor loop costs about a quarter of a short batch's training step)."""
    return {
        "output_dir": str(output_dir),
        "max_steps": profile.train_steps,
        "per_device_train_batch_size": profile.train_batch_size,
        "max_length": profile.max_seq_length,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "seed": profile.seed,
        "data_seed": profile.seed,
        "use_cpu": profile.device == "cpu",
        "bf16": profile.dtype == "bfloat16",  # TRL's configs default to bf16 even on CPU
        "fp16": False,
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
        "optim": "adamw_torch_fused",  # torch's fused AdamW: the same update, about 4x faster a step on a CPU (make bench)
    }


def training_config(output_dir: Path, profile: Profile, **overrides: Any) -> Any:
    """An SFTConfig that runs anywhere: CPU-safe defaults, sized by the profile, no reports.

    Activation checkpointing stays on, as TRL's SFT default has it, but under its current name (TRL sets the
    deprecated ``gradient_checkpointing``, and transformers warns about it on every config).
    """
    from trl import SFTConfig

    settings = trainer_settings(output_dir, profile) | {
        "per_device_eval_batch_size": profile.eval_batch_size, "learning_rate": 1e-4, "lr_scheduler_type": "constant",
        "activation_checkpointing": True,
    }
    return SFTConfig(**(settings | overrides))


def padding_free_settings(tokenizer: Any, rows: list[dict[str, Any]], max_length: int) -> dict[str, Any]:
    """SFTConfig overrides that train without padding: each batch's rows are concatenated into one sequence.

    A padded batch spends compute on pad positions (the longest row sets
    everyone's length); padding-free puts the rows end to end and keeps them
    apart with their position ids (transformers builds a block-diagonal mask
    from them), so the loss is the same and no position is wasted. TRL does not
    truncate rows in this mode, so a row longer than ``max_length`` tokens is an
    error here rather than a silently longer sequence.
    """
    for index, row in enumerate(rows):
        length = len(completion_only_labels(tokenizer, row["prompt"], row["completion"])["input_ids"])
        if length > max_length:
            raise ValueError(f"Training row {index} ({row['prompt'][:60]!r}) is {length} tokens, over the "
                             f"max_length of {max_length}: shorten it or raise the profile's max_seq_length.")
    return {"padding_free": True, "max_length": None}


def checkpoint_settings(every: int) -> dict[str, Any]:
    """SFTConfig overrides that write a resumable checkpoint every ``every`` steps; none for 0.

    One checkpoint is kept: the Trainer deletes the previous one only after the new one is complete.
    """
    return {"save_strategy": "steps", "save_steps": every, "save_total_limit": 1} if every else {}


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The Trainer checkpoint of the highest step that was completely written, or None.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint without it
    was interrupted while saving and must not be resumed from.
    """
    complete = [
        path for path in output_dir.glob("checkpoint-*")
        if re.fullmatch(r"checkpoint-\d+", path.name) and (path / "trainer_state.json").is_file()
    ]
    return max(complete, key=lambda path: int(path.name.split("-")[1]), default=None)


class ReplyScoreCallback(TrainerCallback):
    """At every evaluation, the model's greedy replies to held-out prompts, scored and logged as ``eval_<name>``.

    The validation loss says how likely the references became; this says what
    a user sees (e.g. the share of replies that state their fact), so a run's
    log shows when more passes stop paying. The entry goes into the
    Trainer's ``log_history`` beside that evaluation's loss.
    """

    def __init__(self, tokenizer: Any, prompts: list[str], score: Callable[[list[str]], float], name: str,
                 max_new_tokens: int, batch_size: int) -> None:
        self.tokenizer, self.prompts, self.score, self.name = tokenizer, prompts, score, name
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size

    def measure(self, model: Any) -> float:
        """The score of ``model``'s greedy replies to the prompts (also usable outside training)."""
        return self.score(generate_replies(model, self.tokenizer, self.prompts, max_new_tokens=self.max_new_tokens,
                                           batch_size=self.batch_size))

    def on_evaluate(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        state.log_history.append({"step": state.global_step, "epoch": state.epoch,
                                  f"eval_{self.name}": self.measure(model)})


def fine_tune(
    model: Any, tokenizer: Any, train_rows: list[dict[str, Any]], config: Any,
    eval_rows: list[dict[str, Any]] | None = None, callbacks: list[Any] | None = None,
    resume_from: Path | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place with SFTTrainer; returns the trainer's log history.

    ``resume_from`` is a checkpoint of the same run (:func:`last_complete_checkpoint`):
    training continues from its step with its optimizer and RNG states.
    """
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=model, args=config, processing_class=tokenizer, callbacks=callbacks,
        train_dataset=conversational(train_rows),
        eval_dataset=conversational(eval_rows) if eval_rows else None,
    )
    if resume_from is not None:
        print(f"Resuming training from {resume_from}")
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    model.eval()
    return trainer.state.log_history


def fine_tune_adapter(
    model: Any, tokenizer: Any, train_rows: list[dict[str, Any]], config: Any, peft_config: Any,
) -> tuple[Any, list[dict[str, float]]]:
    """Train a peft adapter (LoRA, prompt or prefix tuning, IA3, ...) on a frozen ``model`` with SFTTrainer.

    Returns the trained ``PeftModel`` (generate with it; ``disable_adapter()`` gives the base back)
    and the trainer's log history. Only the adapter's parameters change.
    """
    from trl import SFTTrainer

    trainer = SFTTrainer(model=model, args=config, processing_class=tokenizer, peft_config=peft_config,
                         train_dataset=conversational(train_rows))
    trainer.train()
    trainer.model.eval()
    return trainer.model, trainer.state.log_history


def replay_rows(model: Any, tokenizer: Any, max_new_tokens: int) -> list[dict[str, Any]]:
    """General questions with the base model's own answers, to mix into fine-tuning data."""
    answers = generate_replies(model, tokenizer, list(REPLAY_QUESTIONS), max_new_tokens=max_new_tokens)
    return [{"prompt": q, "completion": a} for q, a in zip(REPLAY_QUESTIONS, answers)]


def training_losses(history: list[dict[str, float]]) -> list[float]:
    """The training loss at each logged step."""
    return [entry["loss"] for entry in history if "loss" in entry]
