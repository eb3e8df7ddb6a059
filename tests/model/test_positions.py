"""Sinusoidal encodings and RoPE, checked against the formulas and against transformers' Llama."""

import math

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from course_lib.model.positions import (
    apply_rope,
    rope_cos_sin,
    rope_inverse_frequencies,
    rope_relative_scores,
    sinusoidal_positional_encoding,
)


def test_sinusoidal_encoding_follows_the_paper_formula() -> None:
    encoding = sinusoidal_positional_encoding(50, 16)
    assert encoding.shape == (50, 16)
    pos, i = 7, 3
    angle = pos / 10000 ** (2 * i / 16)
    assert encoding[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
    assert encoding[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    # Each row holds dim/2 (sin, cos) pairs, so its norm is sqrt(dim/2); rows are all distinct.
    torch.testing.assert_close(encoding.norm(dim=1), torch.full((50,), math.sqrt(8)))
    assert torch.cdist(encoding, encoding).add(torch.eye(50)).min() > 0.1


def test_odd_dimensions_are_refused() -> None:
    with pytest.raises(ValueError):
        sinusoidal_positional_encoding(4, 7)
    with pytest.raises(ValueError):
        rope_inverse_frequencies(7)


def _hf_rotary(head_dim: int, theta: float) -> LlamaRotaryEmbedding:
    config = LlamaConfig(
        hidden_size=4 * head_dim,
        num_attention_heads=4,
        rope_parameters={"rope_type": "default", "rope_theta": theta},
    )
    return LlamaRotaryEmbedding(config)


@pytest.mark.parametrize("head_dim,theta", [(16, 10000.0), (64, 100000.0)])
def test_rope_matches_transformers_llama(head_dim: int, theta: float) -> None:
    rotary = _hf_rotary(head_dim, theta)
    positions = torch.arange(3, 40)
    query = torch.randn(2, 4, len(positions), head_dim)
    key = torch.randn(2, 2, len(positions), head_dim)

    inverse_frequencies = rope_inverse_frequencies(head_dim, theta)
    torch.testing.assert_close(inverse_frequencies, rotary.inv_freq, rtol=0, atol=0)
    cos, sin = rope_cos_sin(positions, inverse_frequencies)
    hf_cos, hf_sin = rotary(query, positions[None])
    torch.testing.assert_close(cos, hf_cos[0], rtol=0, atol=0)
    torch.testing.assert_close(sin, hf_sin[0], rtol=0, atol=0)

    hf_query, hf_key = apply_rotary_pos_emb(query, key, hf_cos, hf_sin)
    torch.testing.assert_close(apply_rope(query, cos, sin), hf_query, rtol=0, atol=0)
    torch.testing.assert_close(apply_rope(key, cos, sin), hf_key, rtol=0, atol=0)


def test_rope_is_a_rotation() -> None:
    x = torch.randn(5, 32)
    cos, sin = rope_cos_sin(torch.arange(5), rope_inverse_frequencies(32))
    rotated = apply_rope(x, cos, sin)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rotated[0], x[0])  # position 0: angle 0, no change
    assert not torch.allclose(rotated[1:], x[1:])


def test_rope_scores_depend_only_on_relative_position() -> None:
    query, key = torch.randn(64), torch.randn(64)
    same_offset = rope_relative_scores(
        query, key, torch.tensor([2, 10, 500, 4000]), torch.tensor([0, 8, 498, 3998])
    )
    torch.testing.assert_close(same_offset, same_offset[:1].expand(4), atol=1e-3, rtol=1e-4)
    other_offsets = rope_relative_scores(query, key, torch.tensor([3, 10, 20]), torch.tensor([0, 0, 0]))
    assert (other_offsets - same_offset[0]).abs().min() > 1e-2
