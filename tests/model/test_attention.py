"""Attention from scratch against PyTorch's fused kernel and transformers' LlamaAttention."""

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (
    LlamaAttention,
    LlamaRotaryEmbedding,
)
from transformers.models.llama.modeling_llama import repeat_kv as hf_repeat_kv

from course_lib.model.attention import GroupedQueryAttention, causal_mask, repeat_kv, scaled_dot_product_attention


def _qkv(q_len: int = 6, k_len: int = 6, heads: int = 4, dim: int = 16) -> tuple[torch.Tensor, ...]:
    return (
        torch.randn(2, heads, q_len, dim),
        torch.randn(2, heads, k_len, dim),
        torch.randn(2, heads, k_len, dim),
    )


def test_matches_torch_without_mask() -> None:
    query, key, value = _qkv(q_len=5, k_len=7)
    output, weights = scaled_dot_product_attention(query, key, value)
    torch.testing.assert_close(output, F.scaled_dot_product_attention(query, key, value))
    assert weights.shape == (2, 4, 5, 7)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, 4, 5))


def test_causal_mask_matches_torch_is_causal() -> None:
    query, key, value = _qkv()
    output, weights = scaled_dot_product_attention(query, key, value, causal_mask(6))
    torch.testing.assert_close(output, F.scaled_dot_product_attention(query, key, value, is_causal=True))
    assert torch.all(weights.triu(diagonal=1) == 0)


def test_arbitrary_boolean_and_additive_masks_match_torch() -> None:
    query, key, value = _qkv(q_len=5, k_len=8)
    mask = torch.rand(2, 1, 5, 8) > 0.5
    mask[..., 0] = True  # every query must see at least one key
    expected = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    output, weights = scaled_dot_product_attention(query, key, value, mask)
    torch.testing.assert_close(output, expected)
    assert torch.all(weights.masked_select(~mask.expand_as(weights)) == 0)
    additive = torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
    torch.testing.assert_close(scaled_dot_product_attention(query, key, value, additive)[0], expected)


def test_scale_argument_and_saturation_without_it() -> None:
    query, key, value = _qkv(dim=256)
    output, scaled = scaled_dot_product_attention(query, key, value)
    torch.testing.assert_close(output, F.scaled_dot_product_attention(query, key, value, scale=256**-0.5))
    _, unscaled = scaled_dot_product_attention(query, key, value, scale=1.0)
    # Without 1/sqrt(d) the softmax is nearly one-hot: its largest weight is close to 1.
    assert unscaled.max(dim=-1).values.mean() > 0.9
    assert scaled.max(dim=-1).values.mean() < 0.7


def test_causal_mask_for_new_tokens_after_a_cache() -> None:
    mask = causal_mask(2, 5)
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_repeat_kv_grouped_query_attention_matches_torch_gqa() -> None:
    query, _, _ = _qkv(heads=6)
    key, value = torch.randn(2, 2, 6, 16), torch.randn(2, 2, 6, 16)
    assert torch.equal(repeat_kv(key, 3), hf_repeat_kv(key, 3))
    output, _ = scaled_dot_product_attention(query, repeat_kv(key, 3), repeat_kv(value, 3), causal_mask(6))
    expected = F.scaled_dot_product_attention(query, key, value, is_causal=True, enable_gqa=True)
    torch.testing.assert_close(output, expected)


@pytest.fixture
def llama_attention_pair() -> tuple[GroupedQueryAttention, LlamaAttention, LlamaRotaryEmbedding]:
    config = LlamaConfig(
        attn_implementation="eager",
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_parameters={"rope_type": "default", "rope_theta": 500.0},
    )
    hf_attention = LlamaAttention(config, layer_idx=0).eval()
    ours = GroupedQueryAttention(64, num_heads=4, num_kv_heads=2, rope_theta=500.0)
    ours.load_state_dict(hf_attention.state_dict())
    return ours, hf_attention, LlamaRotaryEmbedding(config)


def test_grouped_query_attention_matches_llama_attention(llama_attention_pair) -> None:
    ours, hf_attention, rotary = llama_attention_pair
    x = torch.randn(2, 9, 64)
    with torch.no_grad():
        # Eager attention is causal only through its mask.
        mask = torch.zeros(9, 9).masked_fill(~causal_mask(9), float("-inf"))
        cos_sin = rotary(x, torch.arange(9)[None])
        expected, expected_weights = hf_attention(x, position_embeddings=cos_sin, attention_mask=mask)
        output, (key, value), weights = ours(x)
    torch.testing.assert_close(output, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=1e-5)
    assert key.shape == value.shape == (2, 2, 9, 16) and weights.shape == (2, 4, 9, 9)


def test_attention_with_cache_equals_attention_over_the_whole_sequence(llama_attention_pair) -> None:
    ours, _, _ = llama_attention_pair
    x = torch.randn(1, 10, 64)
    with torch.no_grad():
        full, _, full_weights = ours(x)
        first, past, _ = ours(x[:, :7])
        second, present, weights = ours(x[:, 7:], past)
    torch.testing.assert_close(torch.cat((first, second), dim=1), full, atol=1e-6, rtol=1e-5)
    assert present[0].shape[2] == 10
    # The 3 new tokens attend to all 10 positions, with the weights they have in the full pass.
    torch.testing.assert_close(weights, full_weights[:, :, 7:], atol=1e-6, rtol=1e-5)
