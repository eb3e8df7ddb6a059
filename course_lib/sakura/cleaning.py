"""Sakura Sushi's cleaning rules and the whole pipeline from raw logs to ``qa_train`` (lesson 04).

The generic steps (:mod:`course_lib.data.cleaning`, :mod:`course_lib.data.dedup`)
take their rules as arguments; this module supplies the restaurant's: which
replies are off-voice, which public facts the anonymizer must keep, which
answers the menu verifies. :func:`prepare_training_set` runs every step in order:

1. ``normalize_rows``: NFKC, look-alike letters, quotes, invisible characters, whitespace;
2. ``filter_junk``: named rules (empty, no letters, spam, keyboard mash, not English, off-voice reply);
3. ``anonymize_rows``: customers' names, e-mails, phones and addresses become placeholders,
   the restaurant's own public contact facts stay;
4. ``verify``: a reply must be, word for word, one of the menu's answers (wrong facts go);
5. ``exact_dedup`` then ``near_dedup`` (character 3-gram Jaccard ≥ threshold);
6. ``decontaminate``: no message close to a validation or test question enters training;
7. ``structure``: ``{"id", "topic", "prompt", "completion", "facts"}`` rows.

Quality first, deduplication after: a duplicate is only dropped in favour of an
earlier copy that passed every quality check.
"""

from typing import Any, Callable

from course_lib.data.cleaning import (
    PipelineReport,
    PublicFacts,
    Row,
    StepReport,
    anonymize_rows,
    filter_junk,
    is_keyboard_mash,
    is_spam,
    message_words,
    normalize_rows,
    not_english,
    verify,
)
from course_lib.data.dedup import NEAR_DUPLICATE_THRESHOLD, decontaminate, exact_dedup, near_dedup
from course_lib.sakura.menu import MENU, OPENING_HOURS, POLICIES, all_facts, house_voice
from course_lib.sakura.scoring import follows_house_voice

JUNK_RULES: dict[str, Callable[[Row], bool]] = {
    "empty message": lambda row: not row["message"].strip(),
    "no letters": lambda row: not message_words(row["message"]),
    "spam": lambda row: is_spam(row["message"]),
    "keyboard mash": lambda row: is_keyboard_mash(row["message"]),
    "not English": lambda row: not_english(row["message"]),
    "empty reply": lambda row: not row["staff_reply"].strip(),
    "off-voice reply": lambda row: not follows_house_voice(row["staff_reply"]),
}

RESTAURANT_PHONE = POLICIES["phone"][1][0]
# Public facts that look like personal data and must stay: the restaurant's contact details, its
# chef, its name, its dishes and the days of the week.
PUBLIC_FACTS = PublicFacts(
    terms=(RESTAURANT_PHONE, POLICIES["address"][1][0], POLICIES["chef"][1][0], "Sakura Sushi", "Sakura",
           *(dish.name for dish in MENU), *OPENING_HOURS),
    phones=(RESTAURANT_PHONE,),
)


def answer_key() -> dict[str, dict[str, Any]]:
    """Every correct house answer the menu implies, mapped to its topic and the facts it states."""
    return {house_voice(fact["body"]): {"topic": fact["topic"], "facts": list(fact["facts"])} for fact in all_facts()}


def structure(rows: list[Row], answers: dict[str, dict[str, Any]], split: str = "train") -> tuple[list[Row], StepReport]:
    """Verified log rows as fine-tuning rows: id, topic, prompt, completion and the facts it states."""
    out = [
        {"id": f"qa-{split}-{i:04d}", "topic": answers[row["staff_reply"]]["topic"], "prompt": row["message"],
         "completion": row["staff_reply"], "facts": answers[row["staff_reply"]]["facts"]}
        for i, row in enumerate(rows)
    ]
    return out, StepReport("structure", len(rows), len(out))



def prepare_training_set(
    raw_rows: list[Row], eval_prompts: list[str], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> tuple[list[Row], PipelineReport]:
    """Raw log rows to fine-tuning rows, decontaminated against ``eval_prompts``; with every step's report."""
    answers = answer_key()
    rows, reports = raw_rows, []
    steps: list[Callable[[list[Row]], tuple[list[Row], StepReport]]] = [
        normalize_rows,
        lambda rs: filter_junk(rs, JUNK_RULES),
        lambda rs: anonymize_rows(rs, PUBLIC_FACTS),
        lambda rs: verify(rs, answers),
        exact_dedup,
        lambda rs: near_dedup(rs, threshold),
        lambda rs: decontaminate(rs, eval_prompts, threshold),
        lambda rs: structure(rs, answers),
    ]
    for step in steps:
        rows, report = step(rows)
        reports.append(report)
    return rows, PipelineReport(reports)
