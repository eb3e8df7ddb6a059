"""Scoring answers on the running example: facts, house voice, general knowledge.

These are the simple, transparent checks every lesson reports: did the
answer state the fact (the price, the allergens, the hours), does it speak in
Sakura Sushi's voice, and does the model still know what it knew before.
"""

import re
import unicodedata

from course_lib.sakura.menu import GREETING, SIGN_OFF


def fold_text(text: str) -> str:
    """Unicode-normalized, case-folded, whitespace-collapsed text for lenient matching."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def contains_facts(answer: str, facts: list[str]) -> bool:
    """True when every fact (e.g. '$4.50', 'sesame') appears in the answer, ignoring case and spacing."""
    answer = fold_text(answer)
    return all(fold_text(fact) in answer for fact in facts)


def follows_house_voice(answer: str) -> bool:
    """True when the answer opens with the house greeting and ends with the house sign-off."""
    answer = answer.strip()
    return answer.startswith(GREETING) and answer.endswith(SIGN_OFF)


def answers_question(answer: str, accepted: list[str]) -> bool:
    """True when any accepted answer appears as a whole word ('8' matches '8 legs', not '1800')."""
    text = fold_text(answer)
    return any(re.search(rf"(?<!\w){re.escape(fold_text(a))}(?!\w)", text) for a in accepted)


def rate(flags: list[bool]) -> float:
    """The fraction of True flags (0.0 for an empty list)."""
    return sum(flags) / len(flags) if flags else 0.0
