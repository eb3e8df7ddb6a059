"""Counting a model's parameters: what it stores, and what training will change."""

from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Parameters the model stores (a tied embedding and output matrix counts once)."""
    return sum(p.numel() for p in model.parameters())
