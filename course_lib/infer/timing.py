"""Measuring inference speed: per-step timings, tokens per second, latency against throughput.

Generation is a loop of forward passes, one per new token. Timing each pass
(not only the whole call) shows where the time goes: with a KV cache every step
costs about the same; without one, step t re-reads all t earlier tokens and
grows slower. A shared machine makes single timings noisy, so every function
here can repeat a measurement and keep the fastest run: noise only ever adds
time, so the minimum is the best estimate of what the code itself costs.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

Output = TypeVar("Output")


def best_time(run: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of ``repeats`` wall-clock timings of ``run()``, in seconds."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)


def step_times(model: nn.Module, run: Callable[[], Output], repeats: int = 1) -> tuple[Output, list[float]]:
    """What ``run()`` returns, and the seconds from its start to the end of each forward call of ``model``.

    Element ``i`` of the times is when step ``i + 1`` finished, i.e. when the
    ``i + 1``-th generated token's logits existed (the first step includes the
    prompt). A forward hook records the steps, so any generation loop can be
    timed without changing it. With ``repeats > 1`` each element is the fastest
    of the runs, which must all take the same number of steps; the output is the last run's.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    runs = []
    for _ in range(repeats):
        ends: list[float] = []
        hook = model.register_forward_hook(lambda *_: ends.append(time.perf_counter()))
        started = time.perf_counter()
        try:
            output = run()
        finally:
            hook.remove()
        runs.append([end - started for end in ends])
    if len({len(steps) for steps in runs}) != 1:
        raise ValueError(f"runs took different numbers of steps: {[len(steps) for steps in runs]}")
    return output, [min(step) for step in zip(*runs)]


def tokens_per_second(times: Sequence[float], lengths: Sequence[int], batch_size: int = 1) -> list[float]:
    """Generated tokens per second after each of ``lengths`` steps, from :func:`step_times`.

    ``batch_size`` sequences grow by one token per step, so ``length`` steps
    produce ``batch_size * length`` tokens in ``times[length - 1]`` seconds.
    """
    for length in lengths:
        if not 1 <= length <= len(times):
            raise ValueError(f"length {length} is outside the {len(times)} timed steps")
    return [batch_size * length / times[length - 1] for length in lengths]


@dataclass(frozen=True)
class BatchTiming:
    """Generation of one batch: how long each request waits and how many tokens per second the server makes."""

    batch_size: int
    latency_s: float  # every request in the batch gets its reply when the whole batch is done
    tokens_per_s: float  # all requests together: the server's throughput


def batch_sweep(
    generate: Callable[[int], object], batch_sizes: Sequence[int], new_tokens: int, repeats: int = 3
) -> list[BatchTiming]:
    """Time ``generate(batch_size)`` (which must make ``new_tokens`` per sequence) for each batch size.

    Bigger batches share each weight read among more sequences, so throughput
    rises; but every request waits for the whole batch, so latency rises too.
    Uses the fastest of ``repeats`` runs per batch size.
    """
    timings = []
    for batch_size in batch_sizes:
        seconds = best_time(lambda: generate(batch_size), repeats)
        timings.append(BatchTiming(batch_size, seconds, batch_size * new_tokens / seconds))
    return timings


def greedy_tokens_per_second(model: nn.Module, batch: Any, tokens: int, pad_token_id: int, repeats: int = 3) -> float:
    """Generated tokens per second when ``model`` writes exactly ``tokens`` new tokens greedily after ``batch``
    (one prompt: the latency a single user sees), from the fastest of ``repeats`` runs."""
    settings = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False, "pad_token_id": pad_token_id}
    with torch.no_grad():
        return tokens / best_time(lambda: model.generate(**batch, **settings), repeats=repeats)
