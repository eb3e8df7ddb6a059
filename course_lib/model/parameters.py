"""Counting a model's parameters: what it stores, and what training will change."""

from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Parameters the model stores (a tied embedding and output matrix counts once)."""
    return sum(p.numel() for p in model.parameters())


def count_trainable_parameters(model: nn.Module) -> int:
    """Parameters an optimizer will update (``requires_grad``): what fine-tuning actually trains."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
