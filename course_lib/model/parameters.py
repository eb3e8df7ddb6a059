"""Counting a model's parameters and the bytes it stores: what it holds, and what training will change."""

import io

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Parameters the model stores (a tied embedding and output matrix counts once)."""
    return sum(p.numel() for p in model.parameters())


def count_trainable_parameters(model: nn.Module) -> int:
    """Parameters an optimizer will update (``requires_grad``): what fine-tuning actually trains."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _ByteCounter(io.RawIOBase):
    """A write-only stream that keeps the count of the bytes written to it, not the bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)


def saved_bytes(model: nn.Module) -> int:
    """Bytes ``torch.save(model.state_dict())`` writes, counted without holding them.

    The one size every kind of model agrees on: parameters and buffers, the
    packed weights of quantized layers that are neither, and shared (tied)
    tensors once.
    """
    counter = _ByteCounter()
    torch.save(model.state_dict(), counter)
    return counter.count
