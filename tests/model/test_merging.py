"""Weight interpolation with the base model (WiSE-FT)."""

import copy

import pytest
import torch
from transformers import LlamaForCausalLM

from course_lib.model.merging import interpolate_towards_base


def replace_config(config, **changes):
    """A copy of a model config with some fields changed."""
    changed = copy.deepcopy(config)
    for name, value in changes.items():
        setattr(changed, name, value)
    return changed


def tuned_copy(tiny_llama):
    """A tiny Llama and a copy of it whose weights moved by a known random update."""
    torch.manual_seed(0)
    base = tiny_llama(vocab_size=64)
    tuned = tiny_llama(vocab_size=64)
    tuned.load_state_dict(base.state_dict())
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(torch.randn_like(p))
    return base, tuned


@pytest.mark.parametrize("keep", [0.0, 0.3, 1.0])
def test_interpolation_keeps_that_share_of_the_update(tiny_llama, keep) -> None:
    base, tuned = tuned_copy(tiny_llama)
    expected = {name: base_t + keep * (tuned_t - base_t)
                for (name, base_t), tuned_t in zip(base.state_dict().items(), tuned.state_dict().values())}
    interpolate_towards_base(tuned, base, keep)
    for name, tensor in tuned.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-6, atol=1e-6)
    assert any(not torch.equal(t, b) for t, b in zip(tuned.parameters(), base.parameters())) == (keep > 0)


def test_interpolated_logits_lie_between_when_only_the_final_norm_moved(tiny_llama) -> None:
    base, tuned = tuned_copy(tiny_llama)
    tuned.load_state_dict(base.state_dict())
    with torch.no_grad():
        tuned.model.norm.weight.add_(1.0)  # the logits are linear in the final norm's gain
    ids = torch.tensor([[1, 2, 3, 4]])
    base_logits, tuned_logits = base(ids).logits, tuned(ids).logits
    interpolate_towards_base(tuned, base, 0.25)
    torch.testing.assert_close(tuned(ids).logits, base_logits + 0.25 * (tuned_logits - base_logits), rtol=1e-5, atol=1e-5)


def test_a_different_architecture_or_share_is_refused(tiny_llama) -> None:
    base, tuned = tuned_copy(tiny_llama)
    with pytest.raises(ValueError, match="keep must be in"):
        interpolate_towards_base(tuned, base, 1.5)
    with pytest.raises(ValueError, match="different shapes"):
        interpolate_towards_base(tuned, tiny_llama(vocab_size=80), 0.5)
    before = [p.clone() for p in tuned.parameters()]
    with pytest.raises(ValueError, match="not the other"):
        interpolate_towards_base(tuned, LlamaForCausalLM(replace_config(tuned.config, num_hidden_layers=3)), 0.5)
    assert all(torch.equal(a, b) for a, b in zip(before, tuned.parameters()))  # nothing half-merged
