"""A Llama-style decoder-only transformer from scratch, able to run SmolLM2's real weights.

Reading order: ``RMSNorm`` and ``SwiGLU`` (the two small pieces), ``DecoderBlock``
(attention and feed-forward, each wrapped in a pre-norm residual), ``Decoder``
(embeddings, a stack of blocks, a final norm and the output head) and
``Decoder.generate`` (greedy decoding, with or without a ``KVCache``).

Module and parameter names are those of Hugging Face's ``LlamaForCausalLM``
(minus its ``model.`` prefix), so ``Decoder.from_hf`` loads a real checkpoint
with a plain ``load_state_dict`` and the tests can check our logits against
the library's.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from course_lib.model.attention import GroupedQueryAttention, KeyValue

if TYPE_CHECKING:
    from transformers import LlamaConfig, LlamaForCausalLM


@dataclass
class DecoderConfig:
    """The shape of a decoder. The defaults make a tiny model for pretraining from scratch on a CPU.

    ``DecoderConfig(vocab_size=len(tokenizer))`` has 0.8M parameters besides its
    vocab_size x 128 embedding matrix; ``DecoderConfig.from_hf_config`` reads a real model's sizes.
    """

    vocab_size: int
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int | None = None  # None: hidden_size // num_heads
    intermediate_size: int = 384
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_embeddings: bool = True
    init_std: float = 0.02

    def __post_init__(self) -> None:
        """Default head_dim to hidden_size / num_heads (Llama configs may give another)."""
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_heads

    @classmethod
    def from_hf_config(cls, config: "LlamaConfig") -> "DecoderConfig":
        """The sizes of a Hugging Face LlamaConfig; refuses features this decoder does not implement."""
        rope = config.rope_parameters
        if rope["rope_type"] != "default":
            raise ValueError(f"Only plain RoPE is implemented, not '{rope['rope_type']}'")
        if config.hidden_act != "silu" or config.attention_bias or config.mlp_bias:
            raise ValueError("Only SiLU feed-forwards without biases are implemented")
        return cls(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            num_layers=config.num_hidden_layers,
            num_heads=config.num_attention_heads,
            num_kv_heads=config.num_key_value_heads,
            head_dim=config.head_dim,
            intermediate_size=config.intermediate_size,
            rms_norm_eps=config.rms_norm_eps,
            rope_theta=rope["rope_theta"],
            tie_embeddings=config.tie_word_embeddings,
            init_std=config.initializer_range,
        )


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight: LayerNorm without centring and without bias.

    Rescaling every token vector to a fixed root-mean-square keeps activations
    from drifting in size through many residual additions; dropping the mean
    subtraction saves work without hurting quality. Computed in float32, as in
    Llama, because squares overflow or lose precision in half precision.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize over the last dimension, then scale by the learned weight."""
        x32 = x.float()
        normalized = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * normalized.to(x.dtype)


class SwiGLU(nn.Module):
    """The gated feed-forward of Llama: down(silu(gate(x)) * up(x)).

    Two parallel projections widen each token to ``intermediate_size``; one of
    them, through SiLU, acts as a soft per-unit gate on the other. This gating
    trains better than a plain two-layer MLP of the same cost (Shazeer, 2020).
    """

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the same feed-forward to every token independently."""
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderBlock(nn.Module):
    """One transformer layer: x + attention(norm(x)), then x + feed_forward(norm(x)).

    Pre-norm (normalizing the input of each sub-layer, not its output) leaves
    an untouched residual path from the embeddings to the output, which is
    what lets deep stacks train stably.
    """

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = GroupedQueryAttention(
            config.hidden_size, config.num_heads, config.num_kv_heads, config.head_dim, config.rope_theta
        )
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = SwiGLU(config.hidden_size, config.intermediate_size)

    def forward(
        self, x: torch.Tensor, past_key_value: KeyValue | None = None
    ) -> tuple[torch.Tensor, KeyValue]:
        """Transform x (batch, seq, hidden); also return this layer's keys and values for the cache."""
        attended, key_value, _ = self.self_attn(self.input_layernorm(x), past_key_value)
        x = x + attended
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, key_value


def kv_bytes_per_token(config: DecoderConfig, num_kv_heads: int | None = None, bytes_per_number: int = 4) -> int:
    """Bytes a KV cache holds per token: a key and a value, in every layer, for every KV head.

    ``2 x num_layers x num_kv_heads x head_dim x bytes_per_number`` (4 for
    float32, 2 for bfloat16). ``num_kv_heads`` defaults to the config's;
    passing ``num_heads`` gives the cost without grouped-query attention.
    """
    kv_heads = config.num_kv_heads if num_kv_heads is None else num_kv_heads
    if kv_heads < 1 or bytes_per_number < 1:
        raise ValueError(f"num_kv_heads={kv_heads} and bytes_per_number={bytes_per_number} must both be >= 1")
    return 2 * config.num_layers * kv_heads * config.head_dim * bytes_per_number


class KVCache:
    """The keys and values of every layer for all tokens processed so far.

    Without a cache, generating each new token re-runs the whole sequence;
    with one, only the new token goes through the model and attends to the
    stored keys and values. The price is memory, :func:`kv_bytes_per_token`
    per token, which ``num_bytes`` measures.
    """

    def __init__(self, num_layers: int) -> None:
        self.layers: list[KeyValue | None] = [None] * num_layers

    @property
    def seq_len(self) -> int:
        """How many token positions are cached."""
        first = self.layers[0]
        return 0 if first is None else first[0].shape[2]

    def num_bytes(self) -> int:
        """Memory held by the cached keys and values."""
        return sum(t.numel() * t.element_size() for kv in self.layers if kv is not None for t in kv)


class Decoder(nn.Module):
    """Token ids in, next-token logits out: embeddings, DecoderBlocks, final RMSNorm, output head."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderBlock(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=config.init_std)
        if config.tie_embeddings:
            # One matrix both reads tokens in and scores them out: saves vocab x hidden parameters.
            self.lm_head.weight = self.embed_tokens.weight

    @classmethod
    def from_hf(cls, hf_model: "LlamaForCausalLM") -> "Decoder":
        """A Decoder holding a copy of a Hugging Face LlamaForCausalLM's weights, in eval mode.

        Our names are HF's without the ``model.`` prefix, so the state dict loads
        as is; ``strict`` loading proves that every weight found its place.
        """
        decoder = cls(DecoderConfig.from_hf_config(hf_model.config))
        weights = {name.removeprefix("model."): tensor for name, tensor in hf_model.state_dict().items()}
        decoder.load_state_dict(weights, strict=True)
        reference = next(hf_model.parameters())
        return decoder.to(device=reference.device, dtype=reference.dtype).eval()

    def forward(self, input_ids: torch.Tensor, kv_cache: KVCache | None = None, logits_to_keep: int = 0) -> torch.Tensor:
        """Logits (batch, seq, vocab) for input_ids (batch, seq).

        With a ``kv_cache``, input_ids are the tokens that follow the cached
        ones (their positions continue from ``kv_cache.seq_len``), and the
        cache is extended with their keys and values. ``logits_to_keep=k``
        scores only the last k positions (0: all), as in transformers:
        generation needs just the last one, and the output head over a 49k
        vocabulary is the most expensive matrix of a small model.
        """
        x = self.embed_tokens(input_ids)
        for index, layer in enumerate(self.layers):
            past = None if kv_cache is None else kv_cache.layers[index]
            x, key_value = layer(x, past)
            if kv_cache is not None:
                kv_cache.layers[index] = key_value
        if logits_to_keep:
            x = x[:, -logits_to_keep:]
        return self.lm_head(self.norm(x))

    @torch.no_grad()
    def attention_maps(self, input_ids: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's attention weights for input_ids, each (batch, heads, seq, seq).

        Row i of a head's map says how much token i looked at each earlier
        token: the same numbers Hugging Face returns with ``output_attentions``.
        """
        maps: list[torch.Tensor] = []
        hooks = [
            layer.self_attn.register_forward_hook(lambda module, inputs, output: maps.append(output.weights))
            for layer in self.layers
        ]
        try:
            self(input_ids)
        finally:
            for hook in hooks:
                hook.remove()
        return maps

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        use_cache: bool = True,
        eos_token_id: int | None = None,
    ) -> torch.Tensor:
        """Greedy decoding: append the most likely next token, up to max_new_tokens times.

        Returns the prompt followed by the new tokens, like HF's
        ``generate(do_sample=False)``. The prompts of a batch must have the same
        length (there is no padding mask). Without a cache, every step re-reads
        the whole sequence (but scores only its last position); with one, only the newest token. A sequence that has
        produced ``eos_token_id`` is padded with it until all have finished.
        """
        kv_cache = KVCache(len(self.layers)) if use_cache else None
        tokens = input_ids
        step_input = input_ids
        finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for _ in range(max_new_tokens):
            next_token = self(step_input, kv_cache, logits_to_keep=1)[:, -1].argmax(dim=-1)
            if eos_token_id is not None:
                next_token = next_token.masked_fill(finished, eos_token_id)
                finished |= next_token == eos_token_id
            tokens = torch.cat((tokens, next_token[:, None]), dim=1)
            if finished.all():
                break
            step_input = next_token[:, None] if use_cache else tokens
        return tokens
