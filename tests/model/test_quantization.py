"""Weight quantization from scratch: round-trip error bounds per scheme, NF4 equal to bitsandbytes, real storage
sizes, the Q4_1 grid, packing, the straight-through gradient, quantized models and the schemes that are refused."""

import copy
from itertools import chain
from math import ceil

import bitsandbytes.functional as bnb
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from course_lib.model.quantization import (
    NF4,
    NF4_DOUBLE,
    Q4_1,
    Q8_0,
    QuantizedLinear,
    Scheme,
    absmax_quantize,
    add_fake_quantization,
    block_length,
    fake_quantize,
    nf4_codebook,
    nf4_quantize,
    on_grid_fraction,
    pack,
    quantizable_linears,
    quantization_error,
    quantize,
    quantize_model,
    remove_fake_quantization,
    round_trip,
    simulate_quantization,
    unpack,
    zero_point_quantize,
)

FLOAT_EPS = torch.finfo(torch.float32).eps


def gaussian_with_outliers(shape: tuple[int, int] = (64, 256), outliers: int = 8, factor: float = 20.0) -> torch.Tensor:
    """A standard normal matrix with a few weights blown up ``factor`` times (as in real LLM weights)."""
    weight = torch.randn(shape)
    flat = weight.view(-1)
    flat[torch.randperm(flat.numel())[:outliers]] *= factor
    return weight


def memory(model: nn.Module) -> int:
    """Bytes held by a model's parameters and buffers."""
    return sum(tensor.nbytes for tensor in chain(model.parameters(), model.buffers()))


def scheme_id(scheme: Scheme) -> str:
    """Test ids: the scheme's table label."""
    return scheme.name


# ---------------------------------------------------------------- round-trip error bounds

INTEGER_SCHEMES = [
    Scheme("absmax", 8, "tensor"),
    Scheme("absmax", 4, "channel"),
    Scheme("absmax", 2, "block", 32),
    Q8_0,
    Scheme("absmax", 4, "block", 256, torch.bfloat16),
    Scheme("zero_point", 8, "tensor"),
    Scheme("zero_point", 2, "channel"),
    Q4_1,
    Scheme("zero_point", 4, "block", 128, torch.bfloat16),
]


@pytest.mark.parametrize("scheme", INTEGER_SCHEMES, ids=scheme_id)
def test_integer_codes_are_off_by_at_most_half_a_step_of_their_block(scheme: Scheme) -> None:
    """absmax and zero-point: every weight lands within scale/2 of itself, the scale being its block's stored one;
    the bound is nearly reached (a scale twice too large would halve the worst error)."""
    weight = gaussian_with_outliers()
    stored = quantize(weight, scheme)
    length = block_length(tuple(weight.shape), scheme)
    blocks = weight.view(-1, length)
    error = (stored.dequantize() - weight).view(-1, length).abs()
    half_step = stored.float_scales().view(-1, 1) / 2
    assert half_step.shape == (weight.numel() // length, 1) and (half_step > 0).all()
    eps = 4 * FLOAT_EPS * blocks.abs().amax(dim=1, keepdim=True)
    assert (error <= half_step + eps).all()
    assert (error / half_step).max() > 0.9


@pytest.mark.parametrize("scheme", [NF4, Scheme("nf4", 4, "channel"), Scheme("nf4", 4, "block", 256, torch.float16)],
                         ids=scheme_id)
def test_nf4_codes_are_off_by_at_most_half_the_widest_codebook_gap_times_the_block_absmax(scheme: Scheme) -> None:
    """NF4: |error| <= max gap / 2 · absmax of the block (fp16 absmax adds its own rounding, 2^-11 relative)."""
    weight = gaussian_with_outliers()
    codebook = nf4_codebook()
    half_gap = (codebook[1:] - codebook[:-1]).max() / 2
    length = block_length(tuple(weight.shape), scheme)
    absmax = weight.view(-1, length).abs().amax(dim=1, keepdim=True)
    error = (quantize(weight, scheme).dequantize() - weight).view(-1, length).abs()
    rounding = 2**-11 if scheme.scale_dtype == torch.float16 else 4 * FLOAT_EPS
    assert (error <= half_gap * absmax * (1 + rounding)).all()
    assert (error / (half_gap * absmax)).max() > 0.5  # the widest gap (next to ±1) is where few weights fall


def test_double_quantized_scales_stay_within_half_a_step_of_the_true_absmax_and_bound_the_error() -> None:
    """Double quant: each restored scale is within scale_scale/2 of its block's absmax, and a weight is off by at
    most half a gap times that scale plus whatever the scale fell short of the absmax."""
    weight = gaussian_with_outliers((256, 256))
    stored = quantize(weight, NF4_DOUBLE)
    assert stored.scales.dtype == torch.int8 and stored.scale_scales.shape == (4,) and stored.scale_mean.shape == (1,)
    blocks = weight.view(-1, 64)
    absmax = blocks.abs().amax(dim=1)
    torch.testing.assert_close(stored.scale_mean, absmax.mean().reshape(1), rtol=1e-6, atol=0)  # mean removed
    centred = (absmax - stored.scale_mean).view(-1, 256)
    torch.testing.assert_close(stored.scale_scales, centred.abs().amax(dim=1) / 127, rtol=1e-6, atol=0)
    scales = stored.float_scales()
    step = stored.scale_scales.repeat_interleave(256)
    assert ((scales - absmax).abs() <= step / 2 + 8 * FLOAT_EPS * absmax.max()).all()
    codebook = nf4_codebook()
    half_gap = (codebook[1:] - codebook[:-1]).max() / 2
    bound = half_gap * scales + (absmax - scales).clamp(min=0)
    error = (stored.dequantize() - weight).view(-1, 64).abs().amax(dim=1)
    assert (error <= bound * (1 + 4 * FLOAT_EPS)).all()


def test_finer_blocks_and_more_bits_give_a_smaller_relative_rms_error() -> None:
    """On a Gaussian matrix with outliers: per channel beats per tensor, block 32 beats block 128, 8 bits beat 4."""
    weight = gaussian_with_outliers()
    error = {name: quantization_error(weight, scheme) for name, scheme in {
        "tensor": Scheme("absmax", 4, "tensor"),
        "channel": Scheme("absmax", 4, "channel"),
        "block 128": Scheme("absmax", 4, "block", 128),
        "block 32": Scheme("absmax", 4, "block", 32),
        "8 bits": Scheme("absmax", 8, "block", 32),
    }.items()}
    assert error["channel"] < error["tensor"]
    assert error["block 32"] < error["block 128"] < error["channel"]
    assert error["8 bits"] < error["block 32"] / 10
    direct = quantize(weight, Scheme("absmax", 4, "tensor")).dequantize() - weight
    assert error["tensor"] == pytest.approx((direct.pow(2).mean() / weight.pow(2).mean()).sqrt().item(), rel=1e-6)


# ---------------------------------------------------------------- the code formats on small inputs

def test_absmax_codes_round_ties_away_from_zero() -> None:
    """Scale = absmax / 7 at 4 bits; halves go away from zero (llama.cpp's roundf), not to even."""
    codes, scale = absmax_quantize(torch.tensor([[7.0, 2.5, -2.5, 0.5, -0.5, 1.49, -7.0]]), 4)
    assert scale.item() == 1.0
    assert codes.tolist() == [[7, 3, -3, 1, -1, 1, -7]]


def test_zero_point_codes_span_the_block_range() -> None:
    """Scale = (max - min) / 15 at 4 bits, offset = min, codes 0 … 15 with ties away from zero."""
    codes, scale, minimum = zero_point_quantize(torch.tensor([[-1.0, 1.5, 14.0, 0.0]]), 4)
    assert scale.item() == 1.0 and minimum.item() == -1.0
    assert codes.tolist() == [[0, 3, 15, 1]]


def test_nf4_codes_are_the_nearest_codebook_level() -> None:
    """nf4_quantize picks, for every weight / absmax, the index of the nearest of the 16 levels."""
    blocks = torch.randn(8, 64)
    codes, absmax = nf4_quantize(blocks)
    assert torch.equal(absmax, blocks.abs().amax(dim=1, keepdim=True))
    nearest = (blocks / absmax).unsqueeze(-1).sub(nf4_codebook()).abs().argmin(dim=-1)
    assert torch.equal(codes, nearest)
    peak = blocks.abs().argmax(dim=1, keepdim=True)
    assert torch.equal(codes.gather(1, peak), torch.where(blocks.gather(1, peak) > 0, 15, 0))  # absmax -> level ±1


def test_blocks_run_over_the_flattened_weight_across_rows() -> None:
    """A block of 32 in a (2, 48) weight spans the end of row 0 and the start of row 1, as in bitsandbytes."""
    weight = torch.randn(2, 48)
    weight[0] *= 100
    scheme = Scheme("absmax", 8, "block", 32)
    assert block_length((2, 48), scheme) == 32
    assert block_length((5, 7), Scheme("absmax", 8, "tensor")) == 35
    assert block_length((5, 7), Scheme("absmax", 8, "channel")) == 7
    expected = weight.reshape(-1, 32).abs().amax(dim=1) / 127
    assert torch.equal(quantize(weight, scheme).float_scales(), expected)
    assert expected[1] > 10 * expected[2]  # block 1 holds the end of the large row 0


def test_scheme_names() -> None:
    """The table labels of the presets and the default."""
    assert Q4_1.name == "int4 zero-point / block 32, float16 scales"
    assert Q8_0.name == "int8 absmax / block 32, float16 scales"
    assert NF4.name == "nf4 / block 64"
    assert NF4_DOUBLE.name == "nf4 / block 64 + double quant"
    assert Scheme().name == "int8 absmax / per channel"


# ---------------------------------------------------------------- NF4 against bitsandbytes

def test_nf4_codebook_equals_bitsandbytes_with_16_sorted_levels_and_an_exact_zero() -> None:
    """The 16 levels equal bitsandbytes' table, are strictly increasing from -1 to 1 and hold exactly one 0."""
    codebook = nf4_codebook()
    torch.testing.assert_close(codebook, bnb.get_4bit_type("nf4", device="cpu"), rtol=0, atol=1e-6)
    assert codebook.shape == (16,) and codebook.dtype == torch.float32
    assert (codebook[1:] > codebook[:-1]).all()
    assert codebook[0].item() == -1.0 and codebook[-1].item() == 1.0
    assert (codebook == 0).sum() == 1 and (codebook < 0).sum() == 7 and (codebook > 0).sum() == 8


def test_nf4_dequantization_equals_bitsandbytes() -> None:
    """quantize(w, NF4) round-trips to bitsandbytes' quantize_4bit / dequantize_4bit (block 64) within 1e-5.

    A weight within 1e-6 of the midpoint of two levels is a float tie the libraries may break differently (about
    1 in 70 000 Gaussian weights is that close, none with this seed): such a weight may differ by one level."""
    weight = torch.randn(64, 256)
    packed, state = bnb.quantize_4bit(weight, blocksize=64, quant_type="nf4")
    theirs = bnb.dequantize_4bit(packed, state)
    stored = quantize(weight, NF4)
    codebook = nf4_codebook()
    absmax = weight.view(-1, 64).abs().amax(dim=1, keepdim=True)
    midpoints = (codebook[1:] + codebook[:-1]) / 2
    tie = ((weight.view(-1, 64) / absmax).unsqueeze(-1) - midpoints).abs().amin(dim=-1).view(64, 256) < 1e-6
    difference = (stored.dequantize() - theirs).abs()
    assert tie.sum() <= 2
    assert difference[~tie].max() < 1e-5
    gap = (codebook[1:] - codebook[:-1]).max()
    assert (difference <= gap * absmax.expand(-1, 64).reshape(64, 256) + 1e-5).all()
    torch.testing.assert_close(stored.float_scales(), state.absmax.float(), rtol=0, atol=0)
    assert stored.nbytes == packed.nbytes + state.absmax.nbytes  # same storage: 4-bit codes + one fp32 absmax / 64


# ---------------------------------------------------------------- storage: bits per parameter and bytes

@pytest.mark.parametrize("shape", [(576, 1536), (64, 256), (256, 1024)])
def test_double_quantized_nf4_costs_4_plus_an_8_bit_scale_per_64_plus_fp32_constants(shape: tuple[int, int]) -> None:
    """NF4_DOUBLE: 4 + 8/64 + 32/(64·256) + 32/numel bits per weight when the blocks fill groups of 256; NF4: 4.5."""
    numel = shape[0] * shape[1]
    assert (numel // 64) % 256 == 0
    expected = 4 + 8 / 64 + 32 / (64 * 256) + 32 / numel
    assert NF4_DOUBLE.bits_per_parameter(shape) == pytest.approx(expected, rel=1e-12)
    assert NF4.bits_per_parameter(shape) == 4.5


@pytest.mark.parametrize(("scheme", "expected"), [
    (Q4_1, 4 + 32 / 32),
    (Q8_0, 8 + 16 / 32),
    (Scheme("absmax", 8, "channel"), 8 + 32 / 128),
    (Scheme("zero_point", 2, "tensor", scale_dtype=torch.bfloat16), 2 + 32 / (96 * 128)),
])
def test_bits_per_parameter_counts_codes_scales_and_offsets(scheme: Scheme, expected: float) -> None:
    """Codes plus scale bits (and offset bits for zero-point) per block, over the block length."""
    assert scheme.bits_per_parameter((96, 128)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("scheme", [
    Q4_1, Q8_0, NF4, NF4_DOUBLE,
    Scheme("absmax", 2, "tensor"),
    Scheme("zero_point", 8, "channel", scale_dtype=torch.bfloat16),
    Scheme("absmax", 4, "block", 256, double_quant=True),
], ids=scheme_id)
def test_stored_bytes_match_bits_per_parameter(scheme: Scheme) -> None:
    """The packed codes and scales really held by a QuantizedTensor are bits_per_parameter · numel / 8 bytes."""
    weight = torch.randn(96, 128)  # 192 blocks of 64: double quant pads its last group of 256
    stored = quantize(weight, scheme)
    assert stored.packed.dtype == torch.uint8 and stored.packed.numel() == weight.numel() * scheme.bits // 8
    assert stored.nbytes * 8 / weight.numel() == pytest.approx(scheme.bits_per_parameter((96, 128)), rel=1e-12)


def test_bits_per_parameter_counts_the_padding_of_the_last_packed_byte() -> None:
    """35 two-bit codes fill 9 bytes, not 8.75: the stored size and bits_per_parameter agree on a size 8 bits do not tile."""
    scheme = Scheme("absmax", 2, "tensor")
    stored = quantize(torch.randn(5, 7), scheme)
    assert stored.packed.numel() == 9
    assert scheme.bits_per_parameter((5, 7)) == pytest.approx((9 * 8 + 32) / 35, rel=1e-12)
    assert stored.nbytes * 8 / 35 == pytest.approx(scheme.bits_per_parameter((5, 7)), rel=1e-12)


def test_double_quantization_barely_changes_the_nf4_error() -> None:
    """Storing the absmax in 8 bits (blocks of 256, mean removed) raises the relative RMS error by under 5%."""
    weight = torch.randn(256, 1024) * 0.02
    plain, double = quantize(weight, NF4).dequantize(), quantize(weight, NF4_DOUBLE).dequantize()
    assert not torch.equal(plain, double)
    assert quantization_error(weight, NF4_DOUBLE) < 1.05 * quantization_error(weight, NF4)
    assert ((double - plain).pow(2).mean() / plain.pow(2).mean()).sqrt() < 0.05
    assert NF4_DOUBLE.bits_per_parameter((256, 1024)) < NF4.bits_per_parameter((256, 1024)) - 0.37


# ---------------------------------------------------------------- the Q4_1 grid

def q4_1_grid_weight(shape: tuple[int, int] = (32, 128)) -> tuple[torch.Tensor, ...]:
    """A weight exactly on a Q4_1 grid: per block of 32 an fp16 scale d and minimum m, codes 0 … 15 with both ends
    present, w = codes · d + m in float32. Returns (weight, codes, d, m)."""
    blocks = shape[0] * shape[1] // 32
    scale = (torch.rand(blocks, 1) * 0.01 + 0.001).half()
    minimum = (-torch.rand(blocks, 1) * 0.1).half()
    codes = torch.randint(0, 16, (blocks, 32))
    codes[:, 0], codes[:, 1] = 0, 15
    codes = codes.gather(1, torch.rand(blocks, 32).argsort(dim=1))  # the ends anywhere in the block
    weight = codes.float() * scale.float() + minimum.float()
    return weight.view(shape), codes, scale, minimum


def test_a_weight_on_the_q4_1_grid_requantizes_with_zero_error() -> None:
    """Q4_1 recovers the fp16 scales, minimums and codes of a weight built on its grid: dequantization is exact."""
    weight, codes, scale, minimum = q4_1_grid_weight()
    stored = quantize(weight, Q4_1)
    assert torch.equal(stored.scales, scale.view(-1)) and torch.equal(stored.offsets, minimum.view(-1))
    assert torch.equal(unpack(stored.packed, 4, weight.numel()).view(-1, 32).long(), codes)
    assert torch.equal(stored.dequantize(), weight)
    assert on_grid_fraction(weight, Q4_1) == 1.0


def test_a_random_weight_is_off_the_grid_until_quantized_once() -> None:
    """A Gaussian weight has almost no value on the Q4_1 grid; its round trip lies on it (quantizing is idempotent)."""
    weight = torch.randn(32, 128)
    assert on_grid_fraction(weight, Q4_1) < 0.05
    for scheme in (Q4_1, Q8_0, NF4):
        assert on_grid_fraction(quantize(weight, scheme).dequantize(), scheme) == 1.0


# ---------------------------------------------------------------- packing

@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("count", [1, 7, 64, 101])
def test_pack_then_unpack_returns_the_codes(bits: int, count: int) -> None:
    """8 // bits codes a byte, the last byte padded when count does not divide; unpack drops the padding."""
    codes = torch.randint(0, 2**bits, (count,))
    codes[0] = 2**bits - 1
    packed = pack(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == ceil(count * bits / 8)
    assert torch.equal(unpack(packed, bits, count).long(), codes)


def test_pack_puts_the_first_code_in_the_low_bits() -> None:
    """Byte layout: 4-bit [1, 2, 3] -> 0x21, 0x03; 2-bit [1, 2, 3, 0, 1] -> 0b00111001, 0b01."""
    assert pack(torch.tensor([1, 2, 3]), 4).tolist() == [0x21, 0x03]
    assert pack(torch.tensor([1, 2, 3, 0, 1]), 2).tolist() == [0b00111001, 0b01]
    assert pack(torch.tensor([0, 255, 7]), 8).tolist() == [0, 255, 7]


# ---------------------------------------------------------------- straight-through estimator

@pytest.mark.parametrize("scheme", [Q4_1, Q8_0, NF4, NF4_DOUBLE, Scheme("absmax", 2, "tensor"),
                                    Scheme("zero_point", 8, "channel", scale_dtype=torch.bfloat16)], ids=scheme_id)
def test_round_trip_equals_quantize_then_dequantize(scheme: Scheme) -> None:
    """round_trip (no packing: what simulated and fake quantization use) gives exactly the stored weight's values."""
    weight = gaussian_with_outliers((32, 256))
    assert torch.equal(round_trip(weight, scheme), quantize(weight, scheme).dequantize())


@pytest.mark.parametrize("scheme", [Q4_1, NF4, Scheme("absmax", 2, "channel")], ids=scheme_id)
def test_fake_quantize_is_the_round_trip_forward_and_the_identity_backward(scheme: Scheme) -> None:
    """Forward: the dequantized weight; backward: the upstream gradient unchanged (d sum / dw = 1 everywhere)."""
    weight = torch.randn(16, 64, requires_grad=True)
    out = fake_quantize(weight, scheme)
    assert torch.equal(out, quantize(weight, scheme).dequantize())
    assert not torch.equal(out, weight)
    out.sum().backward()
    assert torch.equal(weight.grad, torch.ones_like(weight))
    weight.grad = None
    upstream = torch.randn(16, 64)
    (fake_quantize(weight, scheme) * upstream).sum().backward()
    assert torch.equal(weight.grad, upstream)


def test_fake_quantized_layers_compute_with_quantized_weights_and_train_the_float_ones() -> None:
    """add_fake_quantization: outputs use quantized weights, the float weights get the straight-through gradient;
    after an SGD step remove_fake_quantization leaves the trained float weights, off the grid."""
    scheme = Scheme("absmax", 4, "channel")
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8))
    floats = [layer.weight.detach().clone() for layer in (model[0], model[2])]
    assert add_fake_quantization(model, scheme) == 2
    assert parametrize.is_parametrized(model[0], "weight") and parametrize.is_parametrized(model[2], "weight")
    inputs = torch.randn(5, 64)
    quantized = [quantize(weight, scheme).dequantize().requires_grad_() for weight in floats]
    expected = F.linear(F.relu(F.linear(inputs, quantized[0], model[0].bias)), quantized[1], model[2].bias)
    out = model(inputs)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    out.pow(2).sum().backward()
    expected.pow(2).sum().backward()
    originals = [model[0].parametrizations.weight.original, model[2].parametrizations.weight.original]
    for original, reference in zip(originals, quantized):
        assert original.grad.abs().sum() > 0
        torch.testing.assert_close(original.grad, reference.grad, rtol=1e-6, atol=1e-7)
    grads = [original.grad.clone() for original in originals]
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert remove_fake_quantization(model) == 2
    for layer, start, grad in zip((model[0], model[2]), floats, grads):
        assert not parametrize.is_parametrized(layer) and isinstance(layer.weight, nn.Parameter)
        torch.testing.assert_close(layer.weight.detach(), start - 0.1 * grad, rtol=0, atol=1e-7)
        assert on_grid_fraction(layer.weight, scheme) < 0.1


# ---------------------------------------------------------------- quantized layers and models

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("scheme", [Q4_1, Q8_0, NF4, NF4_DOUBLE], ids=scheme_id)
def test_quantized_linear_equals_f_linear_with_the_dequantized_weight(scheme: Scheme, bias: bool) -> None:
    """QuantizedLinear(x) = F.linear(x, dequantized weight, bias); it keeps the stored tensors as buffers and
    trains nothing."""
    linear = nn.Linear(128, 48, bias=bias)
    layer = QuantizedLinear(linear, scheme)
    inputs = torch.randn(3, 5, 128)
    stored = quantize(linear.weight, scheme)
    torch.testing.assert_close(layer(inputs), F.linear(inputs, stored.dequantize(), linear.bias), rtol=0, atol=0)
    assert dict(layer.named_buffers()).keys() == stored.tensors().keys()
    assert not any(parameter.requires_grad for parameter in layer.parameters())
    assert sum(buffer.nbytes for buffer in layer.buffers()) == stored.nbytes
    assert f"scheme={scheme.name!r}" in repr(layer)


def test_quantized_linear_computes_from_its_current_buffers() -> None:
    """Buffers loaded with assign=True, or converted by .to(), are what the forward uses (no stale copy)."""
    source, target = QuantizedLinear(nn.Linear(64, 32), NF4), QuantizedLinear(nn.Linear(64, 32), NF4)
    inputs = torch.randn(4, 64)
    assert not torch.equal(source(inputs), target(inputs))
    target.load_state_dict(source.state_dict(), assign=True)
    assert torch.equal(target(inputs), source(inputs))
    double = copy.deepcopy(source).to(torch.float64)
    assert double.scales.dtype == torch.float64 and double.packed.dtype == torch.uint8
    torch.testing.assert_close(double(inputs.double()), source(inputs).double(), rtol=0, atol=1e-5)
    before = source(inputs)
    with torch.no_grad():
        source.scales.mul_(2)  # an in-place change of a buffer shows too
    torch.testing.assert_close(source(inputs), 2 * before - source.bias, rtol=0, atol=1e-5)


@pytest.mark.parametrize("scheme", [NF4, Q4_1, NF4_DOUBLE], ids=scheme_id)
def test_quantize_model_swaps_every_linear_but_the_head_and_matches_simulated_quantization(
        tiny_llama, scheme: Scheme) -> None:
    """14 linears (7 per layer) become QuantizedLinear, the tied head stays; logits equal simulate_quantization's
    on a copy, differ from the float model's, and memory drops by exactly the float weights minus the codes."""
    model = tiny_llama(vocab_size=101).eval()
    float_model, simulated = copy.deepcopy(model), copy.deepcopy(model)
    linears = {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    expected = set(linears) - {"lm_head"}
    assert set(quantizable_linears(model)) == expected and len(expected) == 14
    saved = sum(4 * layer.weight.numel() - quantize(layer.weight, scheme).nbytes
                for name, layer in linears.items() if name in expected)
    assert quantize_model(model, scheme) == 14
    assert simulate_quantization(simulated, scheme) == 14
    assert {name for name, module in model.named_modules() if isinstance(module, QuantizedLinear)} == expected
    assert type(model.lm_head) is nn.Linear and model.lm_head.weight is model.model.embed_tokens.weight
    assert torch.equal(simulated.lm_head.weight, float_model.lm_head.weight)
    ids = torch.randint(0, 101, (2, 9))
    with torch.no_grad():
        logits, simulated_logits, float_logits = model(ids).logits, simulated(ids).logits, float_model(ids).logits
    torch.testing.assert_close(logits, simulated_logits, rtol=0, atol=1e-5)
    assert (logits - float_logits).abs().max() > 1e-4
    assert memory(model) < memory(float_model)
    assert memory(float_model) - memory(model) == saved


# ---------------------------------------------------------------- refused schemes and shapes

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bits": 3}, r"Unsupported bit width 3: use one of \(2, 4, 8\)"),
    ({"granularity": "block", "block_size": 48}, r"Unsupported block size 48: use one of \(32, 64, 128, 256\)"),
    ({"format": "nf4", "bits": 8}, r"NF4 has 16 levels, so 4 bits; got bits=8"),
    ({"format": "zero_point", "bits": 4, "granularity": "block", "block_size": 32, "double_quant": True},
     r"Double quantization is for the scale-only formats \(absmax, nf4\), not zero_point"),
    ({"format": "nf4", "bits": 4, "granularity": "channel", "double_quant": True},
     r"Double quantization compresses per-block scales: use it with granularity='block'"),
    ({"format": "int4"}, r"Unknown quantization format 'int4': use one of \('absmax', 'zero_point', 'nf4'\)"),
    ({"granularity": "row"}, r"Unknown granularity 'row': use one of \('tensor', 'channel', 'block'\)"),
    ({"block_size": 32}, r"Give a block_size with granularity='block', and only then "
                         r"\(got granularity='channel', block_size=32\)"),
    ({"granularity": "block"}, r"\(got granularity='block', block_size=None\)"),
    ({"format": "nf4", "bits": 4, "granularity": "block", "block_size": 64, "scale_dtype": torch.float16,
      "double_quant": True}, r"leave scale_dtype at torch.float32 \(got torch.float16\)"),
])
def test_an_unsupported_scheme_names_the_value_and_the_allowed_ones(kwargs: dict, message: str) -> None:
    """Every invalid Scheme is refused at construction with a message naming what was given and what is allowed."""
    with pytest.raises(ValueError, match=message):
        Scheme(**kwargs)


@pytest.mark.parametrize(("shape", "block_size", "message"), [
    ((5, 7), 32, r"A weight of 35 values \(shape \(5, 7\)\) is not a multiple of block size 32: "
                 r"pad the weight with zeros to a multiple of the block size"),
    ((3, 32), 64, r"A weight of 96 values \(shape \(3, 32\)\) is not a multiple of block size 64: "
                  r"use a block size that divides it: \[32\]"),
    ((64,), 32, r"Expected a 2-d weight \(out_features, in_features\), got shape \(64,\)"),
    ((2, 3, 64), 32, r"Expected a 2-d weight \(out_features, in_features\), got shape \(2, 3, 64\)"),
])
def test_a_weight_the_blocks_do_not_tile_is_refused(shape: tuple[int, ...], block_size: int, message: str) -> None:
    """quantize refuses non-2-d tensors and sizes the blocks do not divide, suggesting block sizes that would."""
    scheme = Scheme("absmax", 4, "block", block_size)
    with pytest.raises(ValueError, match=message):
        quantize(torch.randn(shape), scheme)
    with pytest.raises(ValueError, match=message):
        scheme.bits_per_parameter(shape)


# ---------------------------------------------------------------- zeros

@pytest.mark.parametrize("scheme", [Q4_1, Q8_0, NF4, NF4_DOUBLE, Scheme("absmax", 2, "tensor"),
                                    Scheme("zero_point", 8, "channel")], ids=scheme_id)
def test_an_all_zero_weight_and_an_all_zero_row_come_back_as_zeros_without_nan(scheme: Scheme) -> None:
    """A zero block has scale 0 (never divided by): it comes back as exact zeros, alone or as one row of a weight
    whose other values still quantize (error below rounding everything to 0)."""
    zeros = quantize(torch.zeros(32, 64), scheme)
    assert torch.equal(zeros.dequantize(), torch.zeros(32, 64))
    assert quantization_error(torch.zeros(32, 64), scheme) == 0.0
    assert not zeros.float_scales().isnan().any()
    weight = torch.randn(32, 64)
    weight[3] = 0
    restored = quantize(weight, scheme).dequantize()
    assert not restored.isnan().any() and torch.equal(restored[3], torch.zeros(64))
    assert 0 < quantization_error(weight, scheme) < 1  # better than rounding everything to 0


def test_double_quantization_matches_bitsandbytes_in_error_and_bytes() -> None:
    """bitsandbytes' compress_statistics stores the block absmax in 8 bits per 256 with the mean removed, like ours
    (it uses a dynamic float map where we use linear int8): the same round-trip error within 2% and the same
    number of bytes for the codes and the 8-bit scales."""
    torch.manual_seed(0)
    weight = torch.randn(256, 512)
    packed, state = bnb.quantize_4bit(weight, blocksize=64, quant_type="nf4", compress_statistics=True)
    bnb_error = (bnb.dequantize_4bit(packed, state) - weight).pow(2).mean().sqrt()
    ours = quantize(weight, NF4_DOUBLE)
    our_error = (ours.dequantize() - weight).pow(2).mean().sqrt()
    assert abs(our_error / bnb_error - 1) < 0.02
    assert ours.packed.numel() == packed.numel() and ours.scales.numel() == state.absmax.numel()
    assert ours.scales.element_size() == state.absmax.element_size() == 1


def test_removing_fake_quantization_keeps_other_parametrizations() -> None:
    """Only FakeQuantization is stripped: a layer whose weight has another parametrization keeps that one."""

    class Doubled(nn.Module):
        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            return 2 * weight

    model = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64))
    parametrize.register_parametrization(model[1], "weight", Doubled())
    add_fake_quantization(model, Scheme("absmax", 4, "block", 32))
    assert remove_fake_quantization(model) == 2
    assert not parametrize.is_parametrized(model[0])
    assert [type(p) for p in model[1].parametrizations.weight] == [Doubled]


@pytest.mark.parametrize(("scheme", "ggml_type"), [(Q4_1, "Q4_1"), (Q8_0, "Q8_0")], ids=["Q4_1", "Q8_0"])
def test_gguf_formats_match_llama_cpp_reference(scheme: Scheme, ggml_type: str) -> None:
    """Against the gguf package's reference quantizer (llama.cpp's formats): a weight it quantized re-quantizes
    with ours bit-exactly (the course's GGUF fact), and on a random weight both have the same error within 1%
    (it picks codes with the fp32 scale, we with the stored fp16 one: a few codes differ)."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize
    from gguf.quants import quantize as gguf_quantize

    torch.manual_seed(0)
    weight = torch.randn(64, 256)
    qtype = GGMLQuantizationType[ggml_type]
    reference = torch.from_numpy(gguf_dequantize(gguf_quantize(weight.numpy(), qtype), qtype)).reshape(weight.shape)
    assert torch.equal(round_trip(reference, scheme), reference)
    assert on_grid_fraction(reference, scheme) == 1.0
    ours = round_trip(weight, scheme)
    assert abs((reference - weight).pow(2).mean() / (ours - weight).pow(2).mean() - 1) < 0.01
