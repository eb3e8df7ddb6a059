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
    "01-portuguese-tokens": "4ec9599fc203d176a301536c2e091a19bc852759b255bd6818810a42c5fed14a",
    "01-kv-bytes-per-token": "285e617908891ae7794fb158947b5d20fcd1fd1515fcf891a0f4803d35e52955",
    "01-moe-active-parameters": "414623701376833a3c528ec9321ba2e1cf915bf7474838a6034d9bee2c168223",
    "02-perplexity": "c0ccd5230bf8f1879e9d69d92cec606911cb1270011f5955fd66fc5dc8f1f215",
    "02-smollm2-tokens-per-parameter": "f6af135361fa39be7466da718e8d4bf14d5d3a7125df48da44a90d088817f7f1",
    "02-chinchilla-parameters": "2dc1c7d49f47ce224352caf77feffc52ed045169db284714cbf724a26fcd6845",
    "04-off-voice-drops": "4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5",
    "04-deliver-jaccard": "4fe348e6bd620e9a8d6bae8659bc2471c09bd295112f28366a6d7eaa6272df12",
    "04-lost-at-0.7": "71ee45a3c0db9a9865f7313dd3372cf60dca6479d46261f3542eb9346e4a04d6",
    "04-trained-tokens": "59e19706d51d39f66711c2653cd7eb1291c94d9b55eb14bda74ce4dc636d015a",
    "05-epochs": "b1133c6354aaff809f802709e53dacce82e609f9dc426c2da77dc68cf6fe64a0",
    "05-too-low-rate": "8aed642bf5118b9d3c859bd4be35ecac75b6e873cce34e7b6f554b06f75550d7",
    "05-few-shot-tokens": "fa2b7af0a811b9acde602aacb78e3638e8506dfead5fe6c3425b10b526f94bdd",
    "03-temperature-peak": "c16cd6547c5a0113bde814d7116be60609c8112a319ecd95eb086fb213361ad2",
    "03-top-p-survivors": "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35",
    "03-distinct-2": "ce5d3aa79ae56155078af52e8fac68eb2d0a78489f82bc26c1e1bbc667ba9fde",
    "03-uncached-tokens": "da7ad11e10c382398d0aa803c42ae16e960f2f39c64cb8b10ffda1770d82f568",
    "06-lora-q-proj": "1b21182d31e4941b4dcd2ba3e83f5970ded2005027f8bf0d13c563743b9b6756",
    "06-lora-all-linear-r16": "e60cb9346a5e378124c4ce8213977a9ba4a8f15e77accc0889e8cbf686965765",
    "06-soft-prompt-20": "b19eaa4c809510725e30852809aceb36c1069d7cb30c6124749212274b72b22a",
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
