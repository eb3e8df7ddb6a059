"""Cell-checked exercises: answers compared with a fingerprint, functions compared with the course's own.

Numeric and short answers are kept as SHA-256 hashes of a canonical form, so
:func:`check_answer` tells right from wrong without printing the answer; reals
are compared to 4 significant digits, give or take one unit in the last.
Coding exercises call :func:`check_function`: the student's function and the
course's reference implementation (passed in by the notebook, so this bottom
layer imports nothing above it) run on the same random inputs, and the first
disagreement is reported with its input, the expected and the actual result.
"""

import copy
import hashlib
import json
import math
import random
from collections.abc import Callable
from typing import Any

import torch

SIGNIFICANT_DIGITS = 4
REAL_TOLERANCE = 1e-9  # a float this close to an integer is that integer (6950.0 answers 6950)

ANSWER_HASHES: dict[str, str] = {
    "00-vegetarian-dishes": "3fdba35f04dc8c462986c992bcf875546257113072a909c162f7e470e581e278",
    "00-cheapest-dish": "07f85ef9fd208fa39e37275c29edd20ad1c1e30fbc778a1a98ffc12a5f8f084e",
    "00-prompt-tokens": "3fdba35f04dc8c462986c992bcf875546257113072a909c162f7e470e581e278",
    "01-portuguese-tokens": "4ec9599fc203d176a301536c2e091a19bc852759b255bd6818810a42c5fed14a",
    "01-kv-cache-mib": "7b69759630f869f2723875f873935fed29d2d12b10ef763c1c33b8e0004cb405",
    "01-moe-active-parameters": "414623701376833a3c528ec9321ba2e1cf915bf7474838a6034d9bee2c168223",
    "02-perplexity": "5e2584ba45cf757530b9a404be69e6608a557e00f2ef10eade3cf121d6ba02fc",
    "02-smollm2-tokens-per-parameter": "f6af135361fa39be7466da718e8d4bf14d5d3a7125df48da44a90d088817f7f1",
    "02-chinchilla-parameters": "2dc1c7d49f47ce224352caf77feffc52ed045169db284714cbf724a26fcd6845",
    "04-off-voice-drops": "4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5",
    "04-deliver-jaccard": "4fe348e6bd620e9a8d6bae8659bc2471c09bd295112f28366a6d7eaa6272df12",
    "04-lost-at-0.7": "71ee45a3c0db9a9865f7313dd3372cf60dca6479d46261f3542eb9346e4a04d6",
    "04-trained-tokens": "59e19706d51d39f66711c2653cd7eb1291c94d9b55eb14bda74ce4dc636d015a",
    "04-default-banding-misses": "4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce",
    "05-epochs": "77ac319bfe1979e2d799d9e6987e65feb54f61511c03552ebae990826c208590",
    "05-most-forgetting-rate": "9fca51987c96ba92d35f303353b7065f31114501c9f2afa37463ff1fdffe8f1f",
    "05-few-shot-tokens": "d6061bbee6cf13bd73765faaea7cdd0af1323e4b125342ac346047f7c4bda1fc",
    "03-temperature-peak": "c16cd6547c5a0113bde814d7116be60609c8112a319ecd95eb086fb213361ad2",
    "03-top-p-survivors": "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35",
    "03-distinct-2": "ce5d3aa79ae56155078af52e8fac68eb2d0a78489f82bc26c1e1bbc667ba9fde",
    "03-uncached-tokens": "da7ad11e10c382398d0aa803c42ae16e960f2f39c64cb8b10ffda1770d82f568",
    "06-lora-q-proj": "1b21182d31e4941b4dcd2ba3e83f5970ded2005027f8bf0d13c563743b9b6756",
    "06-lora-all-linear-r16": "e60cb9346a5e378124c4ce8213977a9ba4a8f15e77accc0889e8cbf686965765",
    "06-soft-prompt-20": "b19eaa4c809510725e30852809aceb36c1069d7cb30c6124749212274b72b22a",
    "07-best-of-4-kl": "b8a317635cd7454381f141f22cb42f86266193b955f2f81fe47af7b4e9205910",
    "07-dpo-pair-loss": "3a6d2f79a2f509e9fc7f0afdc79725e50a2432c5aca2f9b44c6b745abe6df1b3",
    "08-gae-first-token": "a30a043314fa89294fa2c1c989a01fbb5329e5c085a5c5a8d27317656de24ae0",
    "08-clipped-objective": "0814305f8cfb2f14744b7c7ce9da6768802df7bdd801d62be3e0d7caa0d84c81",
    "09-examples-needed": "2cfc8ccbd7c0b17615323b41e815651ff2ae9ffae45a4599c0499b98ff940429",
    "09-kappa-by-hand": "f3e360d89952f40d3b79d0b07dd0b94f1cbf9017cba5d2a5f8128e4146d6e3c1",
    "10-q4-1-size": "3bf717db11e1fcdc3f9a199897f7e25324b2c82fb004f644c6c6c3fd841ccfa8",
    "10-int4-by-hand": "4fe348e6bd620e9a8d6bae8659bc2471c09bd295112f28366a6d7eaa6272df12",
    "11-kl-by-hand": "cba11df61e2dbf9be41dd176a854431549bf5d4ff5013323636544464cb8fac6",
    "11-tokens-per-pass": "9aec8d1e42a57a3b1489df411e30eef3be4c769a857c778aae33435f3df3f2e4",
    "12-effective-batch": "2747b7c718564ba5f066f0523b03e17f6a496b06851333d2d59ab6d863225848",
}


def plain(value: Any) -> Any:
    """Python numbers and lists in place of numpy/torch ones: 0-d tensors and numpy scalars become numbers."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _rounded(value: float) -> float | int:
    """An integer when ``value`` is one up to float noise, else ``value`` to 4 significant digits."""
    if math.isfinite(value) and abs(value - round(value)) <= REAL_TOLERANCE * max(1.0, abs(value)):
        return int(round(value))
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return int(rounded) if rounded.is_integer() else rounded


def canonical(value: Any) -> str:
    """A stable text form: integral floats as integers, other reals to 4 significant digits, strings case-folded."""
    value = plain(value)
    if isinstance(value, float):
        return json.dumps(_rounded(value))
    if isinstance(value, str):
        return json.dumps(value.strip().casefold())
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return json.dumps(value, sort_keys=True, default=str)


def fingerprint(value: Any) -> str:
    """The SHA-256 of an answer's canonical form."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def _within_tolerance(value: Any) -> list[Any]:
    """``value`` and, for a non-integral real, its neighbours one unit away in the last significant digit."""
    value = plain(value)
    if not isinstance(value, float) or not math.isfinite(value) or value == 0:
        return [value]
    rounded = _rounded(value)
    if isinstance(rounded, int):
        return [value]
    unit = 10.0 ** (math.floor(math.log10(abs(rounded))) - SIGNIFICANT_DIGITS + 1)
    return [rounded, rounded - unit, rounded + unit]


def check_answer(exercise: str, value: Any) -> None:
    """Print whether ``value`` answers the exercise; raise AssertionError when it does not."""
    if exercise not in ANSWER_HASHES:
        raise KeyError(f"Unknown exercise '{exercise}'. Known: {', '.join(ANSWER_HASHES)}.")
    if not any(fingerprint(v) == ANSWER_HASHES[exercise] for v in _within_tolerance(value)):
        raise AssertionError(f"Exercise {exercise}: {value!r} is not the expected answer. Try again!")
    print(f"Exercise {exercise}: correct.")


def same_result(expected: Any, got: Any, tolerance: float = 1e-5) -> bool:
    """Whether two results agree: tensors in shape, dtype and values (NaN and ±inf in the same places),
    reals within ``tolerance`` (relative and absolute), booleans exactly, containers element by element."""
    if isinstance(expected, torch.Tensor):
        return (isinstance(got, torch.Tensor) and got.shape == expected.shape and got.dtype == expected.dtype
                and torch.allclose(got, expected, rtol=tolerance, atol=tolerance, equal_nan=True))
    if isinstance(expected, bool):
        return isinstance(plain(got), bool) and plain(got) == expected
    if isinstance(expected, (int, float)):
        got = plain(got)
        return (isinstance(got, (int, float)) and not isinstance(got, bool)
                and math.isclose(got, expected, rel_tol=tolerance, abs_tol=tolerance))
    if isinstance(expected, (list, tuple)):
        return (isinstance(got, (list, tuple)) and len(got) == len(expected)
                and all(same_result(e, g, tolerance) for e, g in zip(expected, got)))
    if isinstance(expected, dict):
        return (isinstance(got, dict) and got.keys() == expected.keys()
                and all(same_result(expected[k], got[k], tolerance) for k in expected))
    return bool(got == expected)


def _shown(value: Any, limit: int = 400) -> str:
    """A readable, bounded repr for failure messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " …"


def check_function(
    exercise: str,
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    make_inputs: Callable[[random.Random], dict[str, Any]],
    trials: int = 20,
    seed: int = 0,
    tolerance: float = 1e-5,
) -> None:
    """Check a student's function against the course's reference on ``trials`` random inputs.

    ``make_inputs(rng)`` returns the keyword arguments of one call; it may draw
    from ``rng`` and from torch's generator, both seeded per trial, so every run
    sees the same inputs. Each function gets its own copy of the inputs. Raises
    AssertionError naming the input, the expected and the actual result at the
    first disagreement, or saying the function is not written yet.
    """
    for trial in range(trials):
        torch.manual_seed(seed + trial)
        inputs = make_inputs(random.Random(seed + trial))
        call = f"{candidate.__name__}({', '.join(f'{k}={_shown(v, 200)}' for k, v in inputs.items())})"
        expected = reference(**copy.deepcopy(inputs))
        try:
            got = candidate(**copy.deepcopy(inputs))
        except NotImplementedError:
            raise AssertionError(f"Exercise {exercise}: {candidate.__name__} is not written yet: "
                                 "replace `raise NotImplementedError()` with your code.") from None
        except Exception as error:
            raise AssertionError(f"Exercise {exercise}: {call} raised {type(error).__name__}: {error}") from error
        if not same_result(expected, got, tolerance):
            raise AssertionError(f"Exercise {exercise}: wrong result on random input {trial + 1} of {trials}\n"
                                 f"  call:     {call}\n  expected: {_shown(expected)}\n  got:      {_shown(got)}")
    print(f"Exercise {exercise}: correct on {trials} random inputs.")
