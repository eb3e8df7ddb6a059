"""Throughput measurements: the machine's matmul speed, a model's training and generation tokens per second, padding.

A training run's cost is its tokens times the model's work per token, divided by
what the machine achieves. These functions measure each factor, so a slow run
can be traced to its cause: a slow machine (matmul FLOP/s), tokens that do no
work (padding, a long system prompt in every row) or a low utilisation of the
machine (model-FLOPs utilisation: the FLOPs the model needs per second of
training against what a plain matmul gets).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from course_lib.infer.timing import best_time, greedy_tokens_per_second
from course_lib.model.parameters import count_parameters


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block on ``threads`` torch threads, then give back the count it had."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def matmul_flops_per_second(threads: int, size: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of an fp32 ``size`` × ``size`` matmul on ``threads`` threads (fastest of ``repeats``): the machine's ceiling."""
    with torch_threads(threads):
        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.mm(a, b)  # warm-up: the first call pays for allocation
        return 2 * size**3 / best_time(lambda: torch.mm(a, b), repeats)


def training_flops_per_token(model: nn.Module) -> int:
    """FLOPs one trained token costs: 6 per parameter (2 forward, 4 backward; Kaplan et al. 2020).

    Every stored parameter is used in a matmul once per token (a tied
    embedding through the output head), and at a few hundred tokens the
    attention scores add little.
    """
    return 6 * count_parameters(model)


def training_tokens_per_second(model: nn.Module, batch: dict[str, torch.Tensor], repeats: int = 3) -> float:
    """Real (unpadded) tokens per second of one forward and backward pass over ``batch`` (fastest of ``repeats``).

    ``batch`` holds ``input_ids``, ``attention_mask`` and ``labels``, as a
    collator makes them; the gradients are cleared after each pass.
    """
    model.train()

    def step() -> None:
        model(**batch).loss.backward()
        model.zero_grad(set_to_none=True)

    step()  # warm-up
    seconds = best_time(step, repeats)
    model.eval()
    return int(batch["attention_mask"].sum()) / seconds


def padding_share(lengths: Sequence[int], batch_size: int) -> float:
    """The share of positions that are padding when rows of these lengths, in this order, are batched and each
    batch is padded to its longest row (what the Trainer's default collator does)."""
    if batch_size < 1 or not lengths:
        raise ValueError(f"need rows and a batch size >= 1, got {len(lengths)} rows and batch size {batch_size}")
    batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
    padded = sum(len(batch) * max(batch) for batch in batches)
    return 1 - sum(lengths) / padded


@dataclass(frozen=True)
class ThreadRun:
    """One thread count's measurements on one model."""

    threads: int
    matmul_gflops: float
    training_tokens_per_s: float
    generation_tokens_per_s: float
    model_flops_utilisation: float  # training FLOPs per second achieved / the matmul's FLOP/s

    def as_row(self) -> dict[str, Any]:
        return {"threads": self.threads, "fp32 matmul GFLOP/s": round(self.matmul_gflops, 1),
                "training tokens/s": round(self.training_tokens_per_s, 1),
                "generation tokens/s (batch 1)": round(self.generation_tokens_per_s, 1),
                "MFU": f"{self.model_flops_utilisation:.0%}"}


def measure_threads(model: nn.Module, training_batch: dict[str, torch.Tensor], prompt: dict[str, torch.Tensor],
                    threads: int, new_tokens: int, pad_token_id: int, repeats: int = 3) -> ThreadRun:
    """Matmul, training and greedy generation speed of ``model`` at ``threads`` threads."""
    matmul = matmul_flops_per_second(threads)
    with torch_threads(threads):
        training = training_tokens_per_second(model, training_batch, repeats)
        generation = greedy_tokens_per_second(model, prompt, new_tokens, pad_token_id, repeats)
    return ThreadRun(threads, matmul / 1e9, training, generation, training * training_flops_per_token(model) / matmul)
