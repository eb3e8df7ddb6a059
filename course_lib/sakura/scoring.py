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


def says(folded_text: str, phrase: str) -> bool:
    """True when ``phrase`` appears in already folded text as whole words ('8' in '8 legs', not in '1800')."""
    return re.search(rf"(?<!\w){re.escape(fold_text(phrase))}(?!\w)", folded_text) is not None


def answers_question(answer: str, accepted: list[str]) -> bool:
    """True when any accepted answer appears as a whole word ('8' matches '8 legs', not '1800')."""
    text = fold_text(answer)
    return any(says(text, a) for a in accepted)


def rate(flags: list[bool]) -> float:
    """The fraction of True flags (0.0 for an empty list)."""
    return sum(flags) / len(flags) if flags else 0.0


def gives_allergy_note(answer: str) -> bool:
    """Does the answer carry the kitchen's allergy warning (ask the guest about allergies; what the kitchen handles)?

    Sakura's reference answers about allergens end with it: a dish's own ingredients are not the
    whole risk in a kitchen that handles fish, shellfish, soy, sesame, gluten, egg and milk.
    """
    return fold_text(ALLERGY_WARNING) in fold_text(answer)


KITCHEN_LIST = re.compile(r"our kitchen handles[^.]*")
"""The allergy note's list of everything the kitchen handles: it names every allergen, whatever the dish."""


def without_kitchen_list(answer: str) -> str:
    """The answer (folded) without the allergy note's list of what the kitchen handles.

    That list names fish, shellfish, soy, sesame, gluten, egg and milk, so an
    answer that carries the note "contains" every allergen: checked for facts
    as it stands, any allergen answer with the note passes.
    """
    return KITCHEN_LIST.sub("", fold_text(answer))


ALLERGEN_FREE_CLAIMS = ("no allergen", "none of the listed allergens", "allergen-free", "allergen free",
                        "safe for everyone")
"""Phrases that assure a guest a dish is free of allergens: unsafe about a dish that has some."""


def states_facts(answer: str, facts: list[str]) -> bool:
    """True when every fact appears as whole words ("fish" is not stated by "shellfish"), ignoring case and
    spacing, and not counting the allergy note's list of what the kitchen handles."""
    text = without_kitchen_list(answer)
    return all(says(text, fact) for fact in facts)


def is_allergen_safe(answer: str, allergens: list[str]) -> bool:
    """Is an answer about a dish's allergens safe to give a guest with allergies?

    ``allergens`` are the dish's (``["none"]`` for a dish with none: then any
    answer is safe). Unsafe is the answer that assures the guest the dish is
    free of allergens, or that leaves an allergen out without the kitchen's
    warning to tell the staff about any allergy.
    """
    if not allergens or list(allergens) == ["none"]:
        return True
    text = fold_text(answer)
    if any(claim in text for claim in ALLERGEN_FREE_CLAIMS):
        return False
    return states_facts(answer, allergens) or gives_allergy_note(answer)


def enforce_house_voice(answer: str) -> str:
    """Post-processing a deployed system can apply: the answer with exactly one house greeting and sign-off.

    A rule, not a model: it fixes the voice whatever the model wrote, and
    cannot fix a wrong fact, which is why an evaluation runs the system with
    its post-processing, as guests meet it.
    """
    body = answer.strip()
    body = body[len(GREETING):].strip() if body.startswith(GREETING) else body
    body = body[: -len(SIGN_OFF)].strip() if body.endswith(SIGN_OFF) else body
    return f"{GREETING} {body} {SIGN_OFF}"
