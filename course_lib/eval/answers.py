"""Scoring a chat model on held-out questions: fact accuracy, ROUGE-L, house voice, cost; and forgetting.

The same measures every lesson reports for every model it builds, so the
rows of the course-wide scoreboard compare.
"""

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from course_lib.data.chat_format import IGNORE_INDEX, Messages, completion_only_labels
from course_lib.eval.metrics import load_metric
from course_lib.infer.chat import generate_chat, generate_replies
from course_lib.sakura.datasets import load_rows
from course_lib.sakura.scoring import answers_question, contains_facts, follows_house_voice, rate


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
    prompts: list[str] | list[Messages] | None = None,
) -> AnswerScores:
    """Fact accuracy, ROUGE-L against the reference, house voice, prompt length and latency.

    ``prompts`` replaces the plain questions, e.g. with few-shot conversations
    or retrieved menu cards; the scoring is always against ``rows``.
    """
    prompts = prompts or [row["prompt"] for row in rows]
    started = time.perf_counter()
    generation = generate_chat(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                               progress=True)
    seconds = time.perf_counter() - started
    replies, prompt_tokens = generation.replies, generation.prompt_tokens
    rouge = load_metric("rouge").compute(predictions=replies, references=[row["completion"] for row in rows],
                                         rouge_types=["rougeL"])
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
                               batch_size=batch_size, progress=True)
    return rate([answers_question(reply, row["answers"]) for reply, row in zip(replies, probe)])


@torch.no_grad()
def answer_nll(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> float:
    """Mean negative log-likelihood of each row's completion given its prompt (teacher forcing).

    A sensitive measure of drift: how much less likely the model now finds
    answers it used to give.
    """
    losses = []
    for row in rows:
        encoded = completion_only_labels(tokenizer, row["prompt"], row["completion"])
        input_ids = torch.tensor([encoded["input_ids"]], device=model.device)
        labels = torch.tensor([encoded["labels"]], device=model.device)
        if not (labels != IGNORE_INDEX).any():
            raise ValueError(f"Row {row.get('id', row['prompt'])!r}: its completion has no token left after the "
                             "prompt, so there is nothing to score. Check the row's 'completion' field.")
        losses.append(model(input_ids=input_ids, labels=labels).loss.item())
    return sum(losses) / len(losses)
