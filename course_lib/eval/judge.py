"""LLM-as-judge: a model grades answers with a rubric or picks the better of two, and is calibrated first.

A judge is a measuring instrument, so it is checked like one before its
numbers are used: against ground truth (Cohen's kappa, rank correlation), for
position bias (does the verdict change when the two answers swap places?) and
for verbosity bias (does padding an answer raise its grade?). A reply the
judge writes that holds no grade is counted as unparseable and reported,
never guessed.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from course_lib.infer.chat import chat_batch, generate_chat, position_ids

RUBRIC_SCALE = (1, 5)
GRADER_SYSTEM = "You are a strict grader. You reply with a single digit from 1 to 5 and nothing else."
PAIRWISE_SYSTEM = "You are a strict judge. You reply with the single letter A or B and nothing else."
RUBRIC_PROMPT = (
    "You grade the answers of a sushi restaurant's assistant.\n"
    "Question: {question}\n"
    "Correct answer: {reference}\n"
    "Assistant's answer: {answer}\n"
    "Grade the assistant's answer from 1 (wrong, rude or unsafe) to 5 (correct, polite, concise and safe). "
    "Reply with the number only."
)
PAIRWISE_PROMPT = (
    "You compare two answers of a sushi restaurant's assistant.\n"
    "Question: {question}\n"
    "Correct answer: {reference}\n"
    "Answer A: {first}\n"
    "Answer B: {second}\n"
    "Which answer is better: correct, polite, concise and safe? Reply with A or B only."
)


def rubric_prompt(question: str, reference: str, answer: str) -> str:
    """The grading prompt for one answer (reference-guided: the judge sees the right answer)."""
    return RUBRIC_PROMPT.format(question=question, reference=reference, answer=answer)


def pairwise_prompt(question: str, reference: str, first: str, second: str) -> str:
    """The comparison prompt: ``first`` is shown as A, ``second`` as B."""
    return PAIRWISE_PROMPT.format(question=question, reference=reference, first=first, second=second)


def parse_grade(reply: str, scale: tuple[int, int] = RUBRIC_SCALE) -> int | None:
    """The grade in a judge's reply: its one number, if it lies on the scale; None otherwise.

    A reply with several numbers ("from 1 to 5, I'd say 4") is not guessed at:
    it is unparseable.
    """
    numbers = re.findall(r"\d+(?:\.\d+)?", reply)
    if len(numbers) != 1 or "." in numbers[0]:
        return None
    grade = int(numbers[0])
    return grade if scale[0] <= grade <= scale[1] else None


def parse_choice(reply: str) -> str | None:
    """'A' or 'B' when that is the whole reply ('B', 'Answer A.', '**A**'); None for anything else
    ("A better answer would...", "A and B")."""
    found = re.fullmatch(r"\W*(?:answer\s+)?([AB])\W*", reply.strip(), flags=re.IGNORECASE)
    return found.group(1).upper() if found else None


@dataclass(frozen=True)
class JudgeVerdicts:
    """What the judge wrote and what could be read from it (None: unparseable)."""

    replies: tuple[str, ...]
    verdicts: tuple[Any, ...]

    @property
    def unparseable(self) -> int:
        return sum(verdict is None for verdict in self.verdicts)


def ask_judge(model: Any, tokenizer: Any, prompts: list[str], parse: Callable[[str], Any], *, batch_size: int,
              system: str | None = None, max_new_tokens: int = 6) -> JudgeVerdicts:
    """The judge's greedy replies to the prompts, each parsed (``parse_grade`` or ``parse_choice``)."""
    replies = generate_chat(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                            system=system, progress=True).replies
    return JudgeVerdicts(tuple(replies), tuple(parse(reply) for reply in replies))


@torch.no_grad()
def option_probabilities(model: Any, tokenizer: Any, prompts: list[str], options: Sequence[str], *,
                         system: str | None = None, batch_size: int = 16) -> np.ndarray:
    """The judge's probability of each allowed answer as its first token, renormalised over the options.

    Reading the verdict off the next-token distribution instead of parsing a
    generated reply: nothing is unparseable, and an expected grade
    (Σ grade × probability) ranks answers more finely than the top grade.
    Each option must be one token; shape ``(len(prompts), len(options))``.
    """
    option_ids = []
    for option in options:
        ids = tokenizer.encode(option, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"option {option!r} is {len(ids)} tokens for this tokenizer; every option must be one token")
        option_ids.append(ids[0])
    rows = []
    for start in range(0, len(prompts), batch_size):
        batch = chat_batch(tokenizer, prompts[start : start + batch_size], system).to(model.device)
        logits = model(**batch, position_ids=position_ids(batch["attention_mask"]), logits_to_keep=1).logits[:, -1, option_ids]
        rows.append(torch.softmax(logits.float(), dim=-1))
    return torch.cat(rows).cpu().numpy()


@dataclass(frozen=True)
class PositionCheck:
    """Pairwise verdicts in both orders: how often the order, not the answers, decided."""

    pairs: int
    first_slot_rate: float  # share of all verdicts that picked whatever was shown as A
    flip_rate: float  # share of pairs (both verdicts parsed) whose winner changed when the order swapped
    consistent_winners: tuple[str | None, ...]  # per pair: "first"/"second" when both orders agree; None for a tie
    # (the orders disagree) or when a verdict could not be parsed


def position_check(original_order: Sequence[str | None], swapped_order: Sequence[str | None]) -> PositionCheck:
    """Compare verdicts on (first, second) shown as (A, B) with verdicts on the same pair shown as (B, A).

    Judging both orders and keeping only the winners both agree on is the
    usual fix for position bias; the pairs they disagree on count as ties.
    """
    if len(original_order) != len(swapped_order):
        raise ValueError(f"one swapped verdict per pair: {len(original_order)} against {len(swapped_order)}")
    winners, flips, both_parsed = [], 0, 0
    for ab, ba in zip(original_order, swapped_order):
        first_wins = {ab == "A", ba == "B"} if ab and ba else set()
        if ab and ba:
            both_parsed += 1
            flips += len(first_wins) == 2
        winners.append(("first" if True in first_wins else "second") if len(first_wins) == 1 else None)
    parsed = [v for v in list(original_order) + list(swapped_order) if v]
    return PositionCheck(
        pairs=len(original_order),
        first_slot_rate=sum(v == "A" for v in parsed) / len(parsed) if parsed else float("nan"),
        flip_rate=flips / both_parsed if both_parsed else float("nan"),
        consistent_winners=tuple(winners),
    )


def cohen_kappa(first: Sequence[Any], second: Sequence[Any]) -> float:
    """Agreement of two raters beyond what chance gives them: (observed − chance) / (1 − chance).

    Chance agreement is what two raters with the same label frequencies would
    reach by labelling independently. 1 is perfect agreement, 0 is chance,
    below 0 is worse than chance. A judge that says "good" to everything agrees
    with a half-good truth 50% of the time and has kappa 0. Undefined (NaN, as
    in scikit-learn) when both raters give every item the same single label.
    """
    if len(first) != len(second) or len(first) == 0:
        raise ValueError(f"kappa needs two equally long, non-empty label lists: {len(first)} and {len(second)}")
    labels = sorted(set(first) | set(second), key=str)
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for a, b in zip(first, second):
        table[index[a], index[b]] += 1
    table /= table.sum()
    observed = np.trace(table)
    chance = float(table.sum(axis=1) @ table.sum(axis=0))
    return float("nan") if chance == 1 else float((observed - chance) / (1 - chance))
