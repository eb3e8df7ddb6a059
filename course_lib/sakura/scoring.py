"""Scoring answers on the running example: facts, house voice, general knowledge.

These are the simple, transparent checks every lesson reports: did the
answer state the fact (the price, the allergens, the hours), does it speak in
Sakura Sushi's voice, and does the model still know what it knew before.
"""

import re
import unicodedata

from course_lib.sakura.menu import ALLERGY_NOTE, GREETING, SIGN_OFF

ALLERGY_WARNING = ALLERGY_NOTE.split(":")[0]
"""The note's request, "Please tell us about any allergy when you order": what :func:`gives_allergy_note` looks for."""


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


def gives_allergy_note(answer: str) -> bool:
    """Does the answer carry the kitchen's allergy warning (ask the guest about allergies; what the kitchen handles)?

    Sakura's reference answers about allergens end with it: a dish's own ingredients are not the
    whole risk in a kitchen that handles fish, shellfish, soy, sesame, gluten, egg and milk.
    """
    return fold_text(ALLERGY_WARNING) in fold_text(answer)
