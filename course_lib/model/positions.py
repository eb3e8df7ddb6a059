"""Positional information for attention: sinusoidal encodings and rotary embeddings (RoPE).

Attention by itself is blind to order: permuting the tokens permutes its output
in the same way. Transformers therefore inject positions, either by adding a
vector to each token embedding (the sinusoidal encoding of Vaswani et al., 2017)
or by rotating queries and keys by an angle proportional to the position (RoPE,
Su et al., 2021, used by Llama and SmolLM2). The RoPE functions follow the
"rotate half" layout of Hugging Face's Llama code, so they reproduce its numbers.
"""

import torch


def sinusoidal_positional_encoding(
    num_positions: int, dim: int, base: float = 10000.0
) -> torch.Tensor:
    """The fixed encoding of "Attention Is All You Need", shape (num_positions, dim).

    Even columns hold sin(pos / base^(2i/dim)), odd columns cos(pos / base^(2i/dim)):
    each pair of columns is a clock running at its own speed, from one turn every
    2*pi tokens down to one turn every 2*pi*base tokens, so every position gets a
    distinct pattern that is added to the token embeddings.
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    positions = torch.arange(num_positions, dtype=torch.float32)[:, None]
    frequencies = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    angles = positions * frequencies
    encoding = torch.empty(num_positions, dim)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles)
    return encoding


def rope_inverse_frequencies(head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """The head_dim/2 rotation speeds of RoPE: theta^(-2i/head_dim) radians per position.

    The first pair of dimensions turns by one radian per token (fine, local
    positions); the last pair turns almost not at all (coarse, long-range ones).
    SmolLM2 uses theta = 100000; the original RoPE paper used 10000.
    """
    if head_dim % 2:
        raise ValueError(f"head_dim must be even, got {head_dim}")
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))


def rope_cos_sin(
    positions: torch.Tensor, inverse_frequencies: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of the rotation angles, shape positions.shape + (head_dim,).

    The angle of pair i at position p is p * inverse_frequencies[i]. The angles
    are repeated once (cat of two copies) because ``rotate_half`` pairs dimension
    i with dimension i + head_dim/2 rather than with its neighbour i + 1.
    """
    angles = positions.float()[..., None] * inverse_frequencies
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension: a 90-degree turn of each pair."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (i, i + head_dim/2) pair of x by its position's angle.

    x is (..., seq, head_dim), typically (batch, heads, seq, head_dim); cos and sin
    come from ``rope_cos_sin`` for 1-D positions, shape (seq, head_dim), and
    broadcast over the leading dimensions. This is the 2-D rotation
    [cos -sin; sin cos] applied to every pair at once. The result keeps x's dtype.
    """
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_half(x) * sin


def rope_relative_scores(
    query: torch.Tensor,
    key: torch.Tensor,
    query_positions: torch.Tensor,
    key_positions: torch.Tensor,
    theta: float = 10000.0,
) -> torch.Tensor:
    """Dot products <RoPE(query, m), RoPE(key, n)> for each pair (m, n) of the given positions.

    query and key are single vectors of shape (head_dim,); positions are 1-D
    integer tensors of the same length. Rotations preserve angles between
    vectors, so the score depends only on m - n: pairs such as (3, 1), (10, 8)
    and (1000, 998) give the same number. That is why RoPE encodes *relative*
    position even though each vector is rotated by its *absolute* position.
    """
    inverse_frequencies = rope_inverse_frequencies(query.shape[-1], theta)
    rotated_queries = apply_rope(query, *rope_cos_sin(query_positions, inverse_frequencies))
    rotated_keys = apply_rope(key, *rope_cos_sin(key_positions, inverse_frequencies))
    return (rotated_queries * rotated_keys).sum(dim=-1)
