"""The from-scratch decoder against transformers' Llama: one block, a tiny model and the real SmolLM2."""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import (
    LlamaDecoderLayer,
    LlamaMLP,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
)

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.model.decoder import Decoder, DecoderBlock, DecoderConfig, KVCache, RMSNorm, SwiGLU, kv_bytes_per_token


def _tiny_llama_config(tie_word_embeddings: bool = False, attn_implementation: str = "sdpa") -> LlamaConfig:
    # sdpa, as in a loaded model: a standalone layer would otherwise run eager attention,
    # which is causal only through an explicit mask.
    return LlamaConfig(
        attn_implementation=attn_implementation,
        vocab_size=128,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 500.0},
        tie_word_embeddings=tie_word_embeddings,
    )


def _randomize_norms(module: torch.nn.Module) -> None:
    """Norm weights start at 1; make them random so that a wrong copy would show."""
    for name, parameter in module.named_parameters():
        if "norm" in name:
            torch.nn.init.uniform_(parameter, 0.5, 1.5)


def test_rms_norm_and_swiglu_match_llama() -> None:
    config = _tiny_llama_config()
    x = torch.randn(2, 5, 64) * 3
    hf_norm, ours_norm = LlamaRMSNorm(64, eps=1e-5), RMSNorm(64, eps=1e-5)
    _randomize_norms(torch.nn.ModuleDict({"norm": hf_norm}))
    ours_norm.load_state_dict(hf_norm.state_dict())
    torch.testing.assert_close(ours_norm(x), hf_norm(x), rtol=0, atol=0)
    hf_mlp, ours_mlp = LlamaMLP(config), SwiGLU(64, 160)
    ours_mlp.load_state_dict(hf_mlp.state_dict())
    torch.testing.assert_close(ours_mlp(x), hf_mlp(x), rtol=0, atol=0)


def test_decoder_block_matches_llama_decoder_layer() -> None:
    config = _tiny_llama_config()
    hf_layer = LlamaDecoderLayer(config, layer_idx=0).eval()
    _randomize_norms(hf_layer)
    ours = DecoderBlock(DecoderConfig.from_hf_config(config)).eval()
    ours.load_state_dict(hf_layer.state_dict())
    x = torch.randn(2, 11, 64)
    with torch.no_grad():
        cos_sin = LlamaRotaryEmbedding(config)(x, torch.arange(11)[None])
        expected = hf_layer(x, attention_mask=None, position_embeddings=cos_sin)
        output, _ = ours(x)
    torch.testing.assert_close(output, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("tied", [False, True])
def test_tiny_random_llama_logits_match(tied: bool) -> None:
    hf_model = LlamaForCausalLM(_tiny_llama_config(tie_word_embeddings=tied)).eval()
    _randomize_norms(hf_model)
    ours = Decoder.from_hf(hf_model)
    assert (ours.lm_head.weight is ours.embed_tokens.weight) == tied
    input_ids = torch.randint(0, 128, (2, 13))
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids), hf_model(input_ids).logits, atol=1e-5, rtol=1e-5)


def test_attention_maps_match_transformers_output_attentions() -> None:
    # Only eager attention computes the weights that output_attentions returns.
    hf_model = LlamaForCausalLM(_tiny_llama_config(attn_implementation="eager")).eval()
    _randomize_norms(hf_model)
    ours = Decoder.from_hf(hf_model)
    input_ids = torch.randint(0, 128, (2, 9))
    with torch.no_grad():
        expected = hf_model(input_ids, output_attentions=True).attentions
    maps = ours.attention_maps(input_ids)
    assert len(maps) == len(expected) == 2 and maps[0].shape == (2, 4, 9, 9)
    for ours_map, hf_map in zip(maps, expected):
        torch.testing.assert_close(ours_map, hf_map, atol=1e-6, rtol=1e-5)
    assert all(not layer.self_attn._forward_hooks for layer in ours.layers)  # the hooks are gone


def test_unsupported_llama_features_are_refused() -> None:
    config = _tiny_llama_config()
    config.rope_parameters = {"rope_type": "linear", "rope_theta": 500.0, "factor": 2.0}
    with pytest.raises(ValueError, match="RoPE"):
        DecoderConfig.from_hf_config(config)


@pytest.fixture
def tiny_decoder() -> Decoder:
    config = DecoderConfig(
        vocab_size=97, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64
    )
    return Decoder(config).eval()


def test_forward_with_kv_cache_equals_full_forward(tiny_decoder: Decoder) -> None:
    input_ids = torch.randint(0, 97, (2, 12))
    cache = KVCache(num_layers=2)
    with torch.no_grad():
        full = tiny_decoder(input_ids)
        pieces = [tiny_decoder(input_ids[:, :8], cache)]
        pieces += [tiny_decoder(input_ids[:, i : i + 1], cache) for i in range(8, 12)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.seq_len == 12
    # keys + values, 2 layers, batch 2, 2 KV heads, 12 positions, head_dim 8, 4-byte floats
    assert cache.num_bytes() == 2 * 2 * 2 * 2 * 12 * 8 * 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kv_bytes_per_token_is_what_the_cache_measures(tiny_decoder: Decoder, dtype: torch.dtype) -> None:
    decoder = tiny_decoder.to(dtype)
    cache = KVCache(num_layers=2)
    with torch.no_grad():
        decoder(torch.randint(0, 97, (3, 7)), cache)
    bytes_per_number = torch.finfo(dtype).bits // 8
    assert cache.num_bytes() == 3 * 7 * kv_bytes_per_token(decoder.config, bytes_per_number=bytes_per_number)
    # 2 (key, value) x 2 layers x 2 KV heads x head_dim 8 x bytes per number
    assert kv_bytes_per_token(decoder.config, bytes_per_number=bytes_per_number) == 2 * 2 * 2 * 8 * bytes_per_number
    # Without grouping (one KV head per query head) the cache is num_heads / num_kv_heads = 2 times larger.
    assert kv_bytes_per_token(decoder.config, num_kv_heads=4) == 2 * kv_bytes_per_token(decoder.config)
    with pytest.raises(ValueError, match="num_kv_heads=0"):
        kv_bytes_per_token(decoder.config, num_kv_heads=0)


def test_logits_to_keep_scores_only_the_last_positions(tiny_decoder: Decoder) -> None:
    input_ids = torch.randint(0, 97, (2, 9))
    with torch.no_grad():
        full = tiny_decoder(input_ids)
        last = tiny_decoder(input_ids, logits_to_keep=1)
        last_three = tiny_decoder(input_ids, logits_to_keep=3)
    assert last.shape == (2, 1, 97) and last_three.shape == (2, 3, 97)
    torch.testing.assert_close(last, full[:, -1:], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(last_three, full[:, -3:], atol=1e-6, rtol=1e-6)


def test_generation_with_and_without_cache_agree(tiny_decoder: Decoder) -> None:
    for layer in tiny_decoder.layers:  # sharpen the random model so that ties cannot decide
        layer.mlp.down_proj.weight.data *= 20
    prompt = torch.randint(0, 97, (2, 5))
    cached = tiny_decoder.generate(prompt, max_new_tokens=15, use_cache=True)
    uncached = tiny_decoder.generate(prompt, max_new_tokens=15, use_cache=False)
    assert cached.shape == (2, 20)
    assert torch.equal(cached[:, :5], prompt)
    assert torch.equal(cached, uncached)
    assert len(cached[:, 5:].unique()) > 1


def test_generation_stops_at_end_of_sequence(tiny_decoder: Decoder) -> None:
    prompt = torch.randint(0, 97, (1, 5))
    first = tiny_decoder.generate(prompt, max_new_tokens=1)[0, -1].item()
    stopped = tiny_decoder.generate(prompt, max_new_tokens=10, eos_token_id=first)
    assert stopped.tolist() == [prompt[0].tolist() + [first]]


def test_tiny_config_starts_at_chance_and_learns() -> None:
    config = DecoderConfig(vocab_size=50)
    model = Decoder(config)
    assert config.head_dim == 32 and model.lm_head.weight is model.embed_tokens.weight
    batch = torch.randint(0, 50, (4, 16))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        logits = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 50), batch[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(50), abs=0.1)  # small init: uniform predictions
    assert losses[-1] < 0.6 * losses[0]


# The real SmolLM2-135M-Instruct: loaded once for the module.


@pytest.fixture(scope="module")
def smollm2() -> tuple[LlamaForCausalLM, Decoder, torch.Tensor]:
    hf_model = load_model("smollm2-135m-instruct")
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    sentence = "The capital of France is Paris, and the capital of Germany is"
    input_ids = tokenizer(sentence, return_tensors="pt").input_ids
    return hf_model, Decoder.from_hf(hf_model), input_ids


@pytest.mark.real_model
def test_smollm2_config_is_read_correctly(smollm2) -> None:
    _, ours, _ = smollm2
    config = ours.config
    assert (config.num_layers, config.hidden_size, config.num_heads, config.num_kv_heads) == (30, 576, 9, 3)
    assert (config.head_dim, config.intermediate_size, config.rope_theta) == (64, 1536, 100000.0)
    assert kv_bytes_per_token(config) == 2 * 30 * 3 * 64 * 4 == 46080
    assert ours.lm_head.weight is ours.embed_tokens.weight


@pytest.mark.real_model
def test_smollm2_logits_match_transformers(smollm2) -> None:
    hf_model, ours, input_ids = smollm2
    with torch.no_grad():
        expected = hf_model(input_ids).logits
        logits = ours(input_ids)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-5)


@pytest.mark.real_model
def test_smollm2_greedy_generation_matches_transformers(smollm2) -> None:
    hf_model, ours, input_ids = smollm2
    expected = hf_model.generate(input_ids, max_new_tokens=20, do_sample=False)
    eos_token_id = hf_model.generation_config.eos_token_id
    generated = ours.generate(input_ids, max_new_tokens=20, eos_token_id=eos_token_id)
    assert generated.shape[1] == input_ids.shape[1] + 20
    assert generated.tolist() == expected.tolist()
