"""Attention from scratch: scaled dot-product attention, causal masks and grouped-query attention.

Every token asks a question (its query), every token advertises what it holds
(its key) and what it would hand over (its value). The output for a token is the
average of the values, weighted by how well its query matches each key. The
``GroupedQueryAttention`` module is the attention layer of Llama / SmolLM2, with
the same parameter names and shapes as Hugging Face's ``LlamaAttention``.
"""

import math
from typing import NamedTuple

import torch
from torch import nn

from course_lib.model.positions import apply_rope, rope_cos_sin, rope_inverse_frequencies

KeyValue = tuple[torch.Tensor, torch.Tensor]
"""The keys and values of one layer, each (batch, kv_heads, seq, head_dim)."""


class AttentionOutput(NamedTuple):
    """What an attention layer returns.

    ``output`` (batch, seq, hidden) goes on to the residual stream;
    ``key_value`` holds the keys and values of past + current tokens, the KV
    cache for the next step; ``weights`` (batch, heads, seq, past + seq) says
    how much each query token looked at each key token, for plots and checks.
    """

    output: torch.Tensor
    key_value: KeyValue
    weights: torch.Tensor


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T * scale + mask) V, returning (output, attention weights).

    Shapes: query (..., q_len, d), key (..., k_len, d), value (..., k_len, d_v);
    output (..., q_len, d_v), weights (..., q_len, k_len), each row summing to 1.

    ``scale`` defaults to 1/sqrt(d): dot products of random d-dimensional vectors
    grow like sqrt(d), and without the scale the softmax saturates into a one-hot
    vector with vanishing gradients (pass ``scale=1.0`` to see it).

    ``mask`` broadcasts to (..., q_len, k_len) and is either boolean (True =
    may attend, as in ``torch.nn.functional.scaled_dot_product_attention``) or
    additive floats (0 = attend, -inf = blocked). A row that is fully blocked
    has no valid softmax and comes out as NaN.
    """
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    scores = query @ key.transpose(-2, -1) * scale
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights


def causal_mask(
    q_len: int, k_len: int | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Boolean (q_len, k_len) mask, True where a query may look at a key: never into the future.

    The queries are taken to be the *last* q_len of the k_len positions, so
    query i sits at position i + (k_len - q_len). With a KV cache this lets a
    single new token (q_len = 1) see every cached key; without one (k_len =
    q_len) it is the usual lower-triangular matrix.
    """
    k_len = q_len if k_len is None else k_len
    query_positions = torch.arange(k_len - q_len, k_len, device=device)[:, None]
    key_positions = torch.arange(k_len, device=device)[None, :]
    return key_positions <= query_positions


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(batch, kv_heads, seq, d) -> (batch, kv_heads * n_rep, seq, d) for grouped-query attention.

    In GQA, several query heads share one key/value head, which shrinks the KV
    cache by that factor. Repeating each KV head n_rep times in place (head j
    serves query heads j*n_rep ... j*n_rep + n_rep - 1, as in Llama) turns GQA
    back into ordinary multi-head attention.
    """
    return x.repeat_interleave(n_rep, dim=1)


class GroupedQueryAttention(nn.Module):
    """Llama's causal self-attention layer: RoPE on queries and keys, GQA, optional KV cache.

    ``num_heads`` query heads share ``num_kv_heads`` key/value heads
    (SmolLM2-135M: 9 and 3). The projections carry no bias, as in Llama.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int | None = None,
        rope_theta: float = 10000.0,
    ) -> None:
        super().__init__()
        if num_heads % num_kv_heads:
            raise ValueError(f"num_heads ({num_heads}) must be a multiple of num_kv_heads ({num_kv_heads})")
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim or hidden_size // num_heads
        self.q_proj = nn.Linear(hidden_size, num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(num_heads * self.head_dim, hidden_size, bias=False)
        # Not a parameter and not saved: recomputed from theta, like Llama's rotary embedding.
        self.register_buffer(
            "inverse_frequencies", rope_inverse_frequencies(self.head_dim, rope_theta), persistent=False
        )

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, seq, heads * head_dim) -> (batch, heads, seq, head_dim)."""
        batch, seq, _ = x.shape
        return x.view(batch, seq, -1, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, past_key_value: KeyValue | None = None) -> AttentionOutput:
        """Attend from x (batch, seq, hidden) to itself and to the cached past.

        ``past_key_value`` holds the (already rotated) keys and values of the
        tokens before x; x's tokens get the positions that follow them. Returns
        the output (batch, seq, hidden), the keys and values of past + x, to
        be passed back in at the next step (that is the KV cache), and the
        attention weights of every query head.
        """
        past_len = 0 if past_key_value is None else past_key_value[0].shape[2]
        positions = torch.arange(past_len, past_len + x.shape[1], device=x.device)
        cos, sin = rope_cos_sin(positions, self.inverse_frequencies)
        query = apply_rope(self._split_heads(self.q_proj(x)), cos, sin)
        key = apply_rope(self._split_heads(self.k_proj(x)), cos, sin)
        value = self._split_heads(self.v_proj(x))
        if past_key_value is not None:
            key = torch.cat((past_key_value[0], key), dim=2)
            value = torch.cat((past_key_value[1], value), dim=2)
        n_rep = self.num_heads // self.num_kv_heads
        mask = causal_mask(query.shape[2], key.shape[2], device=x.device)
        output, weights = scaled_dot_product_attention(query, repeat_kv(key, n_rep), repeat_kv(value, n_rep), mask)
        output = output.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        return AttentionOutput(self.o_proj(output), (key, value), weights)
