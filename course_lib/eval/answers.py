"""Scoring a chat model on held-out questions: fact accuracy, ROUGE-L, house voice, cost; and forgetting.

The same measures every lesson reports for every model it builds, so the
rows of the course-wide scoreboard compare.
"""

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from course_lib.data.chat_format import IGNORE_INDEX, Messages, completion_only_labels
from course_lib.eval.intervals import Estimate, clustered_rate_interval, rate_interval
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
    correct: list[bool] = field(repr=False)  # per question: did the reply state every fact?
    facts: list[str] = field(repr=False)  # per question: the fact it asks about (its reference answer)

    def table_row(self) -> dict[str, float]:
        """The numbers, without the per-question lists (for tables and the scoreboard)."""
        return {key: round(value, 3) for key, value in self.__dict__.items()
                if key not in ("replies", "correct", "facts")}

    def accuracy_interval(self) -> Estimate:
        """Fact accuracy with its Wilson interval, n = questions (as if every question were independent)."""
        return rate_interval(self.correct)

    def accuracy_interval_by_fact(self) -> Estimate:
        """Fact accuracy with a bootstrap over facts: questions about one fact stand or fall together."""
        return clustered_rate_interval(self.correct, self.facts)


def score_replies(rows: list[dict[str, Any]], replies: list[str], prompt_tokens: list[int] | None = None,
                  seconds: float = 0.0, fact_check: Callable[[str, list[str]], bool] = contains_facts) -> AnswerScores:
    """Score replies against the rows' facts, reference answers and the house voice.

    ``fact_check(reply, facts)`` decides whether a reply states its facts:
    ``contains_facts`` (substrings, lessons 05–08) or ``states_facts`` (whole
    words, the allergy note's kitchen list ignored; lessons 09 on).
    """
    if len(replies) != len(rows):
        raise ValueError(f"{len(replies)} replies for {len(rows)} questions: give one reply per row")
    rouge = load_metric("rouge").compute(predictions=replies, references=[row["completion"] for row in rows],
                                         rouge_types=["rougeL"])
    correct = [fact_check(reply, row["facts"]) for reply, row in zip(replies, rows)]
    prompt_tokens = prompt_tokens or [0] * len(rows)
    return AnswerScores(
        fact_accuracy=rate(correct),
        rouge_l=rouge["rougeL"],
        house_voice=rate([follows_house_voice(r) for r in replies]),
        prompt_tokens=sum(prompt_tokens) / len(prompt_tokens),
        seconds_per_answer=seconds / len(rows),
        replies=replies,
        correct=correct,
        facts=[row["completion"] for row in rows],
    )


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
    return score_replies(rows, generation.replies, generation.prompt_tokens, time.perf_counter() - started)


def majority_replies(rows: list[dict[str, Any]], reference_rows: list[dict[str, Any]]) -> list[str]:
    """The baseline that knows the kinds of question but no fact: for each question, the answer most common in
    ``reference_rows`` (e.g. the training set) among the *other* facts of the same topic, or "" if there is none.

    It scores what a kind of fact gives away for free: most dishes are not
    vegetarian, so "No, ... is not vegetarian" is right more often than not.
    Leaving the question's own fact out keeps it from knowing the answer
    (a topic with a single fact, like the address, gives it nothing).
    """
    replies = []
    for row in rows:
        others = Counter(r["completion"] for r in reference_rows
                         if r["topic"] == row["topic"] and r["completion"] != row["completion"])
        replies.append(min(others.items(), key=lambda item: (-item[1], item[0]))[0] if others else "")
    return replies


def probe_replies(model: Any, tokenizer: Any, batch_size: int) -> list[str]:
    """The model's greedy replies (24 tokens) to the general-knowledge probe questions, in the probe's order.

    A lesson that also needs the base model's own general answers (the yardstick of forgetting) generates
    them once and scores them with `probe_correct`.
    """
    questions = [row["question"] for row in load_rows("general_probe")]
    return generate_replies(model, tokenizer, questions, max_new_tokens=24, batch_size=batch_size, progress=True)


def probe_correct(replies: list[str]) -> list[bool]:
    """Per probe question, whether its reply (in the probe's order) holds an accepted answer."""
    probe = load_rows("general_probe")
    if len(replies) != len(probe):
        raise ValueError(f"{len(replies)} replies for the {len(probe)} general probe questions: pass one reply per "
                         "question, in the probe's order (probe_replies).")
    return [answers_question(reply, row["answers"]) for reply, row in zip(replies, probe)]


def probe_outcomes(model: Any, tokenizer: Any, batch_size: int) -> list[bool]:
    """Per general-knowledge probe question, whether the greedy reply (24 tokens) holds an accepted answer.

    The list, not the rate: a lesson puts an interval on it and compares two models question by question.
    """
    return probe_correct(probe_replies(model, tokenizer, batch_size))


@torch.no_grad()
def answer_nlls(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> list[float]:
    """Negative log-likelihood of each row's completion given its prompt (teacher forcing), one per row.

    A sensitive measure of drift: how much less likely the model now finds
    answers it used to give. Per row, so two models compare on the same rows.
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
    return losses


def answer_nll(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> float:
    """Mean of :func:`answer_nlls` over the rows."""
    losses = answer_nlls(model, tokenizer, rows)
    return sum(losses) / len(losses)
