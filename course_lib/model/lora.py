"""LoRA from scratch: a trainable low-rank update beside a frozen linear layer.

A frozen weight W (out x in) is left untouched; beside it sit two small
matrices, A (r x in) and B (out x r), and the layer computes
``W x + (alpha / r) * B A x``. B starts at zero, so at initialisation the
model is exactly the pretrained one; training changes only A and B:
r * (in + out) numbers per wrapped layer instead of in * out. After training,
``B A * alpha / r`` can be added into W (:func:`merge_lora`), leaving a plain
linear layer and no inference overhead. Initialisation, scaling, dropout and
the order of operations are peft's (``peft.tuners.lora.Linear``), so the same
A and B give the same logits and gradients as peft — the tests check it.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


def lora_update(x: torch.Tensor, lora_A: torch.Tensor, lora_B: torch.Tensor, scale: float) -> torch.Tensor:
    """What LoRA adds to a layer's output: ``scale * B (A x)`` — x through A (down to r), then B (back up)."""
    return F.linear(F.linear(x, lora_A), lora_B) * scale


def merged_weight(weight: torch.Tensor, lora_A: torch.Tensor, lora_B: torch.Tensor, scale: float) -> torch.Tensor:
    """The weight with LoRA's update added in: ``W + scale * B @ A`` (out x in)."""
    return weight + lora_B @ lora_A * scale


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a rank-``r`` update ``B @ A`` scaled by ``alpha / r``."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if r <= 0 or r > min(base.in_features, base.out_features):
            raise ValueError(
                f"LoRA rank r={r} must be between 1 and min(in, out) = {min(base.in_features, base.out_features)} "
                f"for a layer of shape {tuple(base.weight.shape)}."
            )
        self.base = base
        self.base.requires_grad_(False)
        self.r, self.alpha, self.scale = r, alpha, alpha / r
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # peft's choice; B = 0 keeps the model unchanged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + lora_update(self.dropout(x), self.lora_A, self.lora_B, self.scale)

    def merged(self) -> nn.Linear:
        """A plain linear layer with the update added into its weight."""
        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                           dtype=self.base.weight.dtype, device=self.base.weight.device)
        with torch.no_grad():
            merged.weight.copy_(merged_weight(self.base.weight, self.lora_A, self.lora_B, self.scale))
            if self.base.bias is not None:
                merged.bias.copy_(self.base.bias)
        return merged.requires_grad_(False)


def linear_layer_names(model: nn.Module) -> list[str]:
    """The distinct short names of a model's linear layers ('q_proj', 'down_proj', ...), sorted."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, nn.Linear)})


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def inject_lora(
    model: nn.Module, target_modules: tuple[str, ...], r: int, alpha: float, dropout: float = 0.0
) -> list[str]:
    """Freeze ``model`` and wrap every linear layer whose short name is in ``target_modules``.

    Returns the full names of the wrapped layers. An unknown target name is an
    error that lists the model's linear layers (a typo would otherwise train nothing).
    """
    available = linear_layer_names(model)
    unknown = sorted(set(target_modules) - set(available))
    if unknown:
        raise ValueError(f"Unknown target module(s) {unknown}: this model's linear layers are {available}.")
    model.requires_grad_(False)
    targets = [name for name, module in model.named_modules()
               if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in target_modules]
    for name in targets:
        _set_submodule(model, name, LoRALinear(model.get_submodule(name), r, alpha, dropout))
    return targets


def merge_lora(model: nn.Module) -> int:
    """Replace every ``LoRALinear`` with its merged plain linear layer; returns how many were merged."""
    wrapped = [(name, module) for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    for name, module in wrapped:
        _set_submodule(model, name, module.merged())
    return len(wrapped)


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the LoRA matrices, by parameter name: what you ship for a LoRA adapter."""
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()
            if name.endswith(("lora_A", "lora_B"))}


def load_lora_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load LoRA matrices into an injected model; a missing name or a shape mismatch names both sides."""
    own = lora_state_dict(model)
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"The adapter does not fit this model: missing {missing[:3]}, unexpected {unexpected[:3]} "
                         f"({len(missing)} missing, {len(unexpected)} unexpected in all).")
    for name, tensor in state.items():
        if tensor.shape != own[name].shape:
            raise ValueError(f"The adapter does not fit this model: {name} has shape {tuple(tensor.shape)} "
                             f"in the adapter but {tuple(own[name].shape)} in the model.")
    model.load_state_dict(state, strict=False)


def lora_parameter_count(in_features: int, out_features: int, r: int) -> int:
    """Trainable numbers LoRA adds to one layer: r * (in + out)."""
    return r * (in_features + out_features)
