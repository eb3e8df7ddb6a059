"""Weight interpolation with the base model (WiSE-FT): keep a share of what fine-tuning changed, give the rest back.

Wortsman et al. 2022 (arXiv:2109.01903) found that a fine-tuned model moved
part of the way back towards the model it started from keeps most of what it
learned and recovers much of what it forgot: the fine-tuning update is
``tuned - base``, and the interpolated model is ``base + keep * (tuned - base)``.
It costs no training, so the share kept can be chosen from a measured curve.
"""

import torch
from torch import nn


@torch.no_grad()
def interpolate_towards_base(model: nn.Module, base: nn.Module, keep: float) -> None:
    """Move ``model`` in place to ``base + keep * (model - base)``, parameter by parameter and buffer by buffer.

    ``keep`` = 1 leaves the fine-tuned model, 0 gives the base back; values
    outside [0, 1] extrapolate and are refused. The two models must share an
    architecture (the same tensor names and shapes), which is checked first,
    so nothing is half-merged.
    """
    if not 0 <= keep <= 1:
        raise ValueError(f"keep must be in [0, 1] (the share of the fine-tuning update kept), got {keep}")
    tuned_state, base_state = model.state_dict(), base.state_dict()
    missing = sorted(set(tuned_state) ^ set(base_state))
    if missing:
        raise ValueError(f"the models do not share an architecture: tensors in one but not the other: {missing[:5]}")
    mismatched = [name for name in tuned_state if tuned_state[name].shape != base_state[name].shape]
    if mismatched:
        raise ValueError(f"the models do not share an architecture: tensors of different shapes: {mismatched[:5]}")
    moved: set[int] = set()  # a tied embedding and output head are one tensor under two names: move it once
    for name, tensor in tuned_state.items():
        if tensor.is_floating_point() and tensor.data_ptr() not in moved:
            moved.add(tensor.data_ptr())
            tensor.lerp_(base_state[name].to(tensor.dtype), 1 - keep)
