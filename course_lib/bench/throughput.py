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


def real_tokens(batch: dict[str, torch.Tensor]) -> int:
    """The rows' own tokens in a collated batch: the attention mask's ones, or every position of a padding-free batch."""
    return int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()


def training_tokens_per_second(model: nn.Module, batches: Sequence[dict[str, Any]], repeats: int = 3) -> float:
    """Real (unpadded) tokens per second of one forward and backward pass over each of ``batches``
    (each timed as the fastest of ``repeats``).

    Each batch is what a collator makes: padded (``input_ids``, ``attention_mask``,
    ``labels``) or padding-free (one sequence with ``position_ids``); the
    gradients are cleared after each pass.
    """
    model.train()

    def step(batch: dict[str, Any]) -> None:
        model(**batch).loss.backward()
        model.zero_grad(set_to_none=True)

    seconds = 0.0
    for batch in batches:
        step(batch)  # warm-up
        seconds += best_time(lambda: step(batch), repeats)
    model.eval()
    return sum(real_tokens(batch) for batch in batches) / seconds


def adamw_step_seconds(model: nn.Module, fused: bool, repeats: int = 3) -> float:
    """Seconds of one AdamW step over every trainable parameter (fastest of ``repeats``): torch's per-tensor loop,
    the optimizer the Trainer's ``adamw_torch`` builds on a CPU, or the fused kernel (``adamw_torch_fused``).

    The step reads and writes each parameter, its gradient and two moments, so
    it costs in proportion to the parameters, not the tokens: on a short batch
    it is a large share of a training step. The model's weights and gradients
    are as before afterwards.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.detach().clone() for p in params]
    for p in params:
        p.grad = torch.full_like(p, 1e-3)
    optimizer = torch.optim.AdamW(params, lr=1e-3, foreach=False, fused=fused)  # a real update: the restore matters
    optimizer.step()  # warm-up: the first step allocates the moments
    seconds = best_time(optimizer.step, repeats)
    with torch.no_grad():
        for p, value in zip(params, saved):
            p.copy_(value)
            p.grad = None
    return seconds


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
    padded_tokens_per_s: float  # training on batches padded to their longest row
    padding_free_tokens_per_s: float  # training on the same rows end to end
    generation_tokens_per_s: float
    adamw_step_s: float  # one optimizer step, torch's per-tensor loop
    fused_adamw_step_s: float  # the same step, fused
    model_flops_utilisation: float  # padding-free training FLOPs per second achieved / the matmul's FLOP/s

    def as_row(self) -> dict[str, Any]:
        return {"threads": self.threads, "fp32 matmul GFLOP/s": round(self.matmul_gflops, 1),
                "training tokens/s, padded": round(self.padded_tokens_per_s, 1),
                "training tokens/s, padding-free": round(self.padding_free_tokens_per_s, 1),
                "generation tokens/s (batch 1)": round(self.generation_tokens_per_s, 1),
                "AdamW step s, loop": round(self.adamw_step_s, 3),
                "AdamW step s, fused": round(self.fused_adamw_step_s, 3),
                "MFU": f"{self.model_flops_utilisation:.0%}"}


def measure_threads(model: nn.Module, padded: Sequence[dict[str, Any]], padding_free: Sequence[dict[str, Any]],
                    prompt: dict[str, torch.Tensor], threads: int, new_tokens: int, pad_token_id: int,
                    repeats: int = 3) -> ThreadRun:
    """Matmul, training (the same rows padded and padding-free), optimizer-step (loop and fused) and greedy generation
    speed of ``model`` at ``threads``."""
    matmul = matmul_flops_per_second(threads)
    with torch_threads(threads):
        padded_speed = training_tokens_per_second(model, padded, repeats)
        free_speed = training_tokens_per_second(model, padding_free, repeats)
        generation = greedy_tokens_per_second(model, prompt, new_tokens, pad_token_id, repeats)
        loop_step, fused_step = (adamw_step_seconds(model, fused, repeats) for fused in (False, True))
    return ThreadRun(threads, matmul / 1e9, padded_speed, free_speed, generation, loop_step, fused_step,
                     free_speed * training_flops_per_token(model) / matmul)
