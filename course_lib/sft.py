"""Supervised fine-tuning on Sakura Sushi, and how to measure what it gained and lost.

Training uses TRL's SFTTrainer on conversational prompt-completion rows
(:func:`course_lib.dataprep.to_conversational`), so the loss covers the
assistant's answer only. :func:`sakura_sft_model` is the recipe later lessons
reuse: it trains once per configuration and is then read from the cache.
"""

import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch

from course_lib.artifacts import cached_artifact
from course_lib.chat import generate_replies
from course_lib.data import load_rows
from course_lib.dataprep import to_conversational
from course_lib.metrics import load_metric
from course_lib.models import load_model, load_tokenizer
from course_lib.profiles import Profile
from course_lib.scoring import answers_question, contains_facts, follows_house_voice, rate

HISTORY_FILE = "history.json"

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


def taught_facts(num_facts: int | None, seed: int) -> set[str]:
    """The reference answers (one per fact) a run teaches and tests: all, or a seeded sample.

    On a CPU, teaching every fact takes too long for a lesson, so the default
    profile teaches a sample and tests on exactly those facts.
    """
    answers = sorted({row["completion"] for row in load_rows("qa_test")})
    if num_facts is None or num_facts >= len(answers):
        return set(answers)
    return set(random.Random(seed).sample(answers, num_facts))


def rows_about(dataset: str, facts: set[str]) -> list[dict[str, Any]]:
    """The rows of a data set whose reference answer is one of ``facts``."""
    return [row for row in load_rows(dataset) if row["completion"] in facts]


def conversational(rows: list[dict[str, Any]]) -> datasets.Dataset:
    """Rows as TRL's conversational prompt-completion data set (completion-only loss)."""
    return datasets.Dataset.from_list([to_conversational(row) for row in rows])


def training_config(output_dir: Path, profile: Profile, **overrides: Any) -> Any:
    """An SFTConfig that runs anywhere: CPU-safe defaults, sized by the profile, no reports."""
    from trl import SFTConfig

    settings: dict[str, Any] = {
        "output_dir": str(output_dir),
        "max_steps": profile.train_steps,
        "per_device_train_batch_size": profile.train_batch_size,
        "per_device_eval_batch_size": profile.eval_batch_size,
        "max_length": profile.max_seq_length,
        "learning_rate": 1e-4,
        "lr_scheduler_type": "constant",
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "seed": profile.seed,
        "data_seed": profile.seed,
        "use_cpu": profile.device == "cpu",
        "bf16": profile.dtype == "bfloat16",
        "fp16": False,
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
    }
    return SFTConfig(**(settings | overrides))


def fine_tune(
    model: Any, tokenizer: Any, train_rows: list[dict[str, Any]], config: Any,
    eval_rows: list[dict[str, Any]] | None = None, callbacks: list[Any] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place with SFTTrainer; returns the trainer's log history."""
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=model, args=config, processing_class=tokenizer, callbacks=callbacks,
        train_dataset=conversational(train_rows),
        eval_dataset=conversational(eval_rows) if eval_rows else None,
    )
    trainer.train()
    model.eval()
    return trainer.state.log_history


def replay_rows(model: Any, tokenizer: Any, max_new_tokens: int) -> list[dict[str, Any]]:
    """General questions with the base model's own answers, to mix into fine-tuning data."""
    answers = generate_replies(model, tokenizer, list(REPLAY_QUESTIONS), max_new_tokens=max_new_tokens)
    return [{"prompt": q, "completion": a} for q, a in zip(REPLAY_QUESTIONS, answers)]


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

    @classmethod
    def from_profile(cls, profile: Profile, num_facts: int | None, learning_rate: float, replay: bool = False) -> "SFTRecipe":
        return cls(profile.model_name, num_facts, learning_rate, profile.train_steps, profile.train_batch_size,
                   profile.max_seq_length, profile.seed, replay)


def sakura_sft_model(recipe: SFTRecipe, profile: Profile) -> Path:
    """A folder with the fine-tuned model, its tokenizer and history.json: trained once, then cached."""

    def build(folder: Path) -> None:
        model = load_model(recipe.model_name, dtype=profile.dtype, device=profile.device)
        tokenizer = load_tokenizer(recipe.model_name)
        train_rows = rows_about("qa_train", taught_facts(recipe.num_facts, recipe.seed))
        if recipe.replay:
            train_rows = train_rows + replay_rows(model, tokenizer, recipe.replay_max_new_tokens)
        config = training_config(
            folder / "checkpoints", profile, max_steps=recipe.steps, learning_rate=recipe.learning_rate,
            per_device_train_batch_size=recipe.batch_size, max_length=recipe.max_seq_length, seed=recipe.seed,
        )
        history = fine_tune(model, tokenizer, train_rows, config)
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        (folder / HISTORY_FILE).write_text(json.dumps(history, indent=2))

    import course_lib.dataprep

    return cached_artifact("sakura-sft", recipe.__dict__, build, code=(sys.modules[__name__], course_lib.dataprep))


def training_losses(history: list[dict[str, float]]) -> list[float]:
    """The training loss at each logged step."""
    return [entry["loss"] for entry in history if "loss" in entry]


@dataclass
class AnswerScores:
    """How a model answered held-out Sakura Sushi questions."""

    fact_accuracy: float
    rouge_l: float
    house_voice: float
    prompt_tokens: float
    seconds_per_answer: float
    replies: list[str] = field(repr=False)

    def table_row(self) -> dict[str, float]:
        """The numbers, without the replies (for tables and the scoreboard)."""
        return {key: round(value, 3) for key, value in self.__dict__.items() if key != "replies"}


def evaluate_answers(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]], *, max_new_tokens: int, batch_size: int,
    prompts: list[Any] | None = None,
) -> AnswerScores:
    """Fact accuracy, ROUGE-L against the reference, house voice, prompt length and latency.

    ``prompts`` replaces the plain questions, e.g. with few-shot conversations
    or retrieved menu cards; the scoring is always against ``rows``.
    """
    prompts = prompts or [row["prompt"] for row in rows]
    started = time.perf_counter()
    replies = generate_replies(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    seconds = time.perf_counter() - started
    rouge = load_metric("rouge").compute(predictions=replies, references=[row["completion"] for row in rows],
                                         rouge_types=["rougeL"])
    prompt_tokens = [
        len(tokenizer.apply_chat_template([{"role": "user", "content": p}] if isinstance(p, str) else p,
                                          add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])
        for p in prompts
    ]
    return AnswerScores(
        fact_accuracy=rate([contains_facts(r, row["facts"]) for r, row in zip(replies, rows)]),
        rouge_l=rouge["rougeL"],
        house_voice=rate([follows_house_voice(r) for r in replies]),
        prompt_tokens=sum(prompt_tokens) / len(prompt_tokens),
        seconds_per_answer=seconds / len(rows),
        replies=replies,
    )


def probe_accuracy(model: Any, tokenizer: Any, batch_size: int) -> float:
    """The fraction of general-knowledge probe questions answered correctly (greedy, 24 tokens)."""
    probe = load_rows("general_probe")
    replies = generate_replies(model, tokenizer, [row["question"] for row in probe], max_new_tokens=24,
                               batch_size=batch_size)
    return rate([answers_question(reply, row["answers"]) for reply, row in zip(replies, probe)])


@torch.no_grad()
def answer_nll(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> float:
    """Mean negative log-likelihood of each row's completion given its prompt (teacher forcing).

    A sensitive measure of drift: how much less likely the model now finds
    answers it used to give.
    """
    from course_lib.dataprep import IGNORE_INDEX, completion_only_labels

    losses = []
    for row in rows:
        encoded = completion_only_labels(tokenizer, row["prompt"], row["completion"])
        input_ids = torch.tensor([encoded["input_ids"]], device=model.device)
        labels = torch.tensor([encoded["labels"]], device=model.device)
        assert (labels != IGNORE_INDEX).any()
        losses.append(model(input_ids=input_ids, labels=labels).loss.item())
    return sum(losses) / len(losses)
