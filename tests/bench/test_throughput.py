"""The machine benchmark's measurements: padding, FLOPs per token, matmul and training throughput."""

import pytest
import torch
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from course_lib.bench.throughput import (
    adamw_step_seconds, matmul_flops_per_second, measure_threads, padding_share, real_tokens, training_flops_per_token,
    training_tokens_per_second,
)
from course_lib.model.parameters import count_parameters


def test_padding_share_counts_the_positions_padded_to_each_batchs_longest_row() -> None:
    # batches [10, 20] -> 40 positions for 30 tokens, [30, 30] -> 60 for 60, [5] -> 5 for 5
    assert padding_share([10, 20, 30, 30, 5], batch_size=2) == pytest.approx(1 - 95 / 105)
    assert padding_share([7, 7, 7], batch_size=3) == 0
    assert padding_share([7, 9], batch_size=1) == 0
    with pytest.raises(ValueError, match="batch size >= 1"):
        padding_share([3], batch_size=0)
    with pytest.raises(ValueError, match="need rows"):
        padding_share([], batch_size=2)


def test_training_costs_six_flops_per_parameter_and_token(tiny_llama) -> None:
    model = tiny_llama(vocab_size=64)
    assert training_flops_per_token(model) == 6 * count_parameters(model)


def test_matmul_throughput_is_positive_and_restores_the_thread_count() -> None:
    before = torch.get_num_threads()
    assert matmul_flops_per_second(threads=1, size=128, repeats=2) > 1e6
    assert torch.get_num_threads() == before


def tiny_batches(padding_free: bool) -> list[dict[str, torch.Tensor]]:
    """Two rows of 6 and 4 tokens, collated by TRL's collator padded or padding-free."""
    rows = [{"input_ids": list(range(1, 7)), "labels": [-100, -100, 3, 4, 5, 6]},
            {"input_ids": [7, 8, 9, 10], "labels": [-100, 8, 9, 10]}]
    return [DataCollatorForLanguageModeling(pad_token_id=0, padding_free=padding_free)(rows)]


def test_real_tokens_are_the_rows_own_padded_or_not() -> None:
    padded, free = tiny_batches(padding_free=False)[0], tiny_batches(padding_free=True)[0]
    assert padded["input_ids"].shape == (2, 6) and free["input_ids"].shape == (1, 10)
    assert real_tokens(padded) == real_tokens(free) == 10


def test_training_throughput_leaves_no_gradient_and_the_model_in_eval_mode(tiny_llama) -> None:
    model = tiny_llama(vocab_size=64)
    assert training_tokens_per_second(model, tiny_batches(padding_free=True), repeats=2) > 0
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


@pytest.mark.parametrize("fused", [False, True])
def test_adamw_step_timing_leaves_the_weights_and_no_gradient(tiny_llama, fused: bool) -> None:
    model = tiny_llama(vocab_size=64)
    before = [p.detach().clone() for p in model.parameters()]
    assert adamw_step_seconds(model, fused=fused, repeats=2) > 0
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert all(p.grad is None for p in model.parameters())


def test_measure_threads_reports_utilisation_of_padding_free_training_over_matmul_flops(tiny_llama) -> None:
    model = tiny_llama(vocab_size=64)
    prompt = {"input_ids": torch.tensor([[1, 2, 3]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}
    run = measure_threads(model, tiny_batches(False), tiny_batches(True), prompt, threads=1, new_tokens=2,
                          pad_token_id=0, repeats=1)
    assert run.threads == 1 and run.generation_tokens_per_s > 0 and run.padded_tokens_per_s > 0
    achieved = run.padding_free_tokens_per_s * training_flops_per_token(model)
    assert run.model_flops_utilisation == pytest.approx(achieved / (run.matmul_gflops * 1e9))
    assert set(run.as_row()) == {"threads", "fp32 matmul GFLOP/s", "training tokens/s, padded",
                                 "training tokens/s, padding-free", "generation tokens/s (batch 1)",
                                 "AdamW step s, loop", "AdamW step s, fused", "MFU"}
    assert run.adamw_step_s > 0 and run.fused_adamw_step_s > 0
