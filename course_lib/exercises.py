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
    "04-off-voice-drops": "4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5",
    "04-deliver-jaccard": "4fe348e6bd620e9a8d6bae8659bc2471c09bd295112f28366a6d7eaa6272df12",
    "04-lost-at-0.7": "71ee45a3c0db9a9865f7313dd3372cf60dca6479d46261f3542eb9346e4a04d6",
    "04-trained-tokens": "59e19706d51d39f66711c2653cd7eb1291c94d9b55eb14bda74ce4dc636d015a",
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
