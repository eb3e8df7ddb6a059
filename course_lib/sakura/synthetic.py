"""Synthetic training data: new phrasings of the training questions, answered by a teacher, then filtered.

Data distillation trains a student on text a teacher wrote. The questions
here are the training questions in new conversational frames (a greeting, a
thank-you, an apology), so no held-out phrasing leaks in; the answers come
from the teacher and are only as good as the teacher, which is why
:func:`filter_synthetic` keeps an answer only if it states every fact of its
question in the house voice, and reports what it removed.
"""

import random
from dataclasses import dataclass
from typing import Any

from course_lib.sakura.scoring import follows_house_voice, states_facts

QUESTION_FRAMES = (
    "Hello! {question}",
    "Hi there, quick question: {question}",
    "{question} Thanks a lot!",
    "Sorry to bother you. {question}",
    "Good evening. {question}",
    "{question} I'd like to know before I come in.",
)


def framed_questions(rows: list[dict[str, Any]], per_row: int, seed: int) -> list[dict[str, Any]]:
    """``per_row`` new phrasings of each row's question (distinct frames drawn with ``seed``), same facts and reference."""
    if not 1 <= per_row <= len(QUESTION_FRAMES):
        raise ValueError(f"per_row must be between 1 and {len(QUESTION_FRAMES)} (the number of frames), got {per_row}")
    rng = random.Random(seed)
    framed = []
    for row in rows:
        for number, frame in enumerate(rng.sample(QUESTION_FRAMES, per_row)):
            framed.append(row | {"id": f"{row['id']}-framed-{number}", "prompt": frame.format(question=row["prompt"])})
    return framed


@dataclass(frozen=True)
class FilteredSynthetic:
    """Teacher-answered rows split by the filter."""

    kept: list[dict[str, Any]]  # the teacher's answer as the completion; every fact stated, house voice
    removed: list[dict[str, Any]]  # the same, for answers that missed a fact or the house voice

    @property
    def kept_share(self) -> float:
        """Share of the teacher's answers the filter kept."""
        return len(self.kept) / (len(self.kept) + len(self.removed))


def filter_synthetic(rows: list[dict[str, Any]], answers: list[str]) -> FilteredSynthetic:
    """Rows with the teacher's ``answers`` as completions, split into those that state every fact of their row in
    the house voice and the rest. An empty kept set is an error: training on it would silently do nothing."""
    if len(answers) != len(rows):
        raise ValueError(f"{len(answers)} answers for {len(rows)} synthetic questions: give one answer per row")
    kept, removed = [], []
    for row, answer in zip(rows, answers):
        answered = row | {"completion": answer, "reference": row["completion"]}
        good = states_facts(answer, row["facts"]) and follows_house_voice(answer)
        (kept if good else removed).append(answered)
    if not kept:
        raise ValueError(
            f"the filter removed all {len(rows)} synthetic rows (no teacher answer stated its facts in the house "
            "voice): there is nothing to train on. Check the teacher (is it the fine-tuned model?) and its "
            "generation settings before distilling."
        )
    return FilteredSynthetic(kept, removed)
