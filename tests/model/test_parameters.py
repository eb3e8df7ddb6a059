"""Counting parameters and stored bytes: tied tensors once, frozen ones not trainable, packed weights included."""

import io

import torch
from torch import nn

from course_lib.model.parameters import count_parameters, count_trainable_parameters, saved_bytes
from course_lib.model.quantization import NF4, quantize_model


class TiedModel(nn.Module):
    """An embedding and an output head sharing one matrix, with a linear layer between."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 64)
        self.body = nn.Linear(64, 64)
        self.head = nn.Linear(64, 50, bias=False)
        self.head.weight = self.embed.weight

    def get_output_embeddings(self) -> nn.Module:
        return self.head


def test_tied_matrices_count_once_and_frozen_ones_are_not_trainable() -> None:
    model = TiedModel()
    assert count_parameters(model) == 50 * 64 + 64 * 64 + 64
    model.embed.weight.requires_grad_(False)
    assert count_trainable_parameters(model) == 64 * 64 + 64


def test_saved_bytes_is_what_torch_save_writes_and_shrinks_with_packed_weights() -> None:
    model = TiedModel()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert saved_bytes(model) == len(buffer.getvalue())
    assert saved_bytes(model) < 2 * 50 * 64 * 4 + 64 * 64 * 4  # the tied matrix is written once
    float_bytes = saved_bytes(model)
    quantize_model(model, NF4)
    assert float_bytes - saved_bytes(model) > 0.8 * 64 * 64 * 4  # the body's fp32 weight became 4.5 bits per weight
