"""Cell-checked exercises: a student's answer is compared with a stored fingerprint.

Answers are kept as SHA-256 hashes of a canonical form, so the check tells
right from wrong without printing the answer. Each lesson's exercise cells
call :func:`check_answer`; CI runs them with the reference solutions.
"""

import hashlib
import json
from typing import Any

ANSWER_HASHES: dict[str, str] = {
    "00-vegetarian-dishes": "3fdba35f04dc8c462986c992bcf875546257113072a909c162f7e470e581e278",
    "00-cheapest-dish": "07f85ef9fd208fa39e37275c29edd20ad1c1e30fbc778a1a98ffc12a5f8f084e",
    "00-prompt-tokens": "86e50149658661312a9e0b35558d84f6c6d3da797f552a9657fe0558ca40cdef",
}


def canonical(value: Any) -> str:
    """A stable text form: floats rounded to 4 decimals, strings case-folded and stripped."""
    if isinstance(value, float):
        return json.dumps(round(value, 4))
    if isinstance(value, str):
        return json.dumps(value.strip().casefold())
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return json.dumps(value, sort_keys=True, default=str)


def fingerprint(value: Any) -> str:
    """The SHA-256 of an answer's canonical form."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def check_answer(exercise: str, value: Any) -> None:
    """Print whether ``value`` answers the exercise; raise AssertionError when it does not."""
    if exercise not in ANSWER_HASHES:
        raise KeyError(f"Unknown exercise '{exercise}'. Known: {', '.join(ANSWER_HASHES)}.")
    if fingerprint(value) != ANSWER_HASHES[exercise]:
        raise AssertionError(f"Exercise {exercise}: {value!r} is not the expected answer. Try again!")
    print(f"Exercise {exercise}: correct.")
