"""Weight quantization from scratch: integer and NF4 codes per tensor, per channel or per block.

A weight matrix is cut into blocks (the whole tensor, one output row, or
``block_size`` consecutive weights); each block keeps its own scale
(and, for the asymmetric format, an offset) and every weight becomes a small
integer code. Three code formats:

- ``absmax`` (symmetric): ``w ≈ scale · q`` with ``q`` in ``[-(2^(b-1) - 1), 2^(b-1) - 1]``;
- ``zero_point`` (asymmetric): ``w ≈ scale · q + minimum`` with ``q`` in ``[0, 2^b - 1]``
  (the GGUF ``Q4_1`` convention: the offset is the block's minimum as a float);
- ``nf4``: ``w ≈ absmax · codebook[q]``, with 16 levels at quantiles of a normal
  distribution (QLoRA; :func:`nf4_codebook` equals bitsandbytes' table).

:class:`QuantizedTensor` stores the codes packed into bytes, so its memory is
real; :func:`quantize_model` swaps a model's linear layers for
:class:`QuantizedLinear` (real storage, dequantized at each forward), and
:func:`simulate_quantization` writes the dequantized weights back into a float
model (same outputs, float speed: what quality measurements use).
:func:`add_fake_quantization` trains through the rounding with a
straight-through estimator (quantization-aware training).
"""

from dataclasses import dataclass, field
from functools import lru_cache
from math import ceil

import torch
from scipy.stats import norm
from torch import nn
from torch.nn.utils import parametrize

SUPPORTED_BITS = (2, 4, 8)
SUPPORTED_BLOCK_SIZES = (32, 64, 128, 256)
FORMATS = ("absmax", "zero_point", "nf4")
GRANULARITIES = ("tensor", "channel", "block")
DOUBLE_QUANT_BLOCK_SIZE = 256
NF4_OFFSET = (1 - 1 / (2 * 15) + 1 - 1 / (2 * 16)) / 2  # 0.9677…: bitsandbytes' quantile range


@dataclass(frozen=True)
class Scheme:
    """How to quantize a weight matrix: code format, bits, granularity and the precision of the scales.

    ``double_quant`` stores the block scales themselves in 8 bits (blocks of
    256, mean removed): QLoRA's layout and bit count, with linear int8 codes
    where bitsandbytes uses its 8-bit dynamic (float-like) map.
    """

    format: str = "absmax"
    bits: int = 8
    granularity: str = "channel"
    block_size: int | None = None
    scale_dtype: torch.dtype = torch.float32
    double_quant: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"Unknown quantization format {self.format!r}: use one of {FORMATS}.")
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"Unsupported bit width {self.bits}: use one of {SUPPORTED_BITS} "
                             "(codes are packed into bytes, so the width must divide 8).")
        if self.format == "nf4" and self.bits != 4:
            raise ValueError(f"NF4 has 16 levels, so 4 bits; got bits={self.bits}.")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"Unknown granularity {self.granularity!r}: use one of {GRANULARITIES}.")
        if (self.granularity == "block") != (self.block_size is not None):
            raise ValueError("Give a block_size with granularity='block', and only then "
                             f"(got granularity={self.granularity!r}, block_size={self.block_size}).")
        if self.block_size is not None and self.block_size not in SUPPORTED_BLOCK_SIZES:
            raise ValueError(f"Unsupported block size {self.block_size}: use one of {SUPPORTED_BLOCK_SIZES}.")
        if self.double_quant and self.granularity != "block":
            raise ValueError("Double quantization compresses per-block scales: use it with granularity='block'.")
        if self.double_quant and self.format == "zero_point":
            raise ValueError("Double quantization is for the scale-only formats (absmax, nf4), not zero_point.")
        if self.double_quant and self.scale_dtype != torch.float32:
            raise ValueError(f"Double quantization stores the scales in 8 bits itself: leave scale_dtype at "
                             f"torch.float32 (got {self.scale_dtype}).")

    @property
    def name(self) -> str:
        """A short label for tables, e.g. 'int4 absmax / block 32' or 'nf4 / block 64 + double quant'."""
        kind = "nf4" if self.format == "nf4" else f"int{self.bits} {self.format.replace('_', '-')}"
        where = f"block {self.block_size}" if self.granularity == "block" else f"per {self.granularity}"
        precision = "" if self.scale_dtype == torch.float32 else f", {str(self.scale_dtype).removeprefix('torch.')} scales"
        return f"{kind} / {where}{precision}" + (" + double quant" if self.double_quant else "")

    def bits_per_parameter(self, shape: tuple[int, ...]) -> float:
        """Storage bits per weight for a tensor of ``shape``: the codes plus every scale and offset."""
        numel = int(torch.Size(shape).numel())
        blocks = numel // block_length(shape, self)
        scale_bits = torch.finfo(self.scale_dtype).bits * (2 if self.format == "zero_point" else 1)
        if self.double_quant:
            groups = ceil(blocks / DOUBLE_QUANT_BLOCK_SIZE)
            scale_total = blocks * 8 + groups * 32 + 32  # 8-bit scales, an fp32 scale per 256, one fp32 mean
        else:
            scale_total = blocks * scale_bits
        code_bits = ceil(numel * self.bits / 8) * 8  # codes are packed into whole bytes
        return (code_bits + scale_total) / numel


Q4_1 = Scheme("zero_point", 4, "block", 32, torch.float16)  # GGUF: the course's linear weights
Q8_0 = Scheme("absmax", 8, "block", 32, torch.float16)  # GGUF: the course's embedding matrix
NF4 = Scheme("nf4", 4, "block", 64)  # bitsandbytes / QLoRA
NF4_DOUBLE = Scheme("nf4", 4, "block", 64, double_quant=True)


def block_length(shape: tuple[int, ...], scheme: Scheme) -> int:
    """How many consecutive weights (of the row-major tensor) share one scale; refuses sizes the blocks do not tile.

    Blocks run over the flattened tensor, as in bitsandbytes, so a block may
    span two rows when a row is not a multiple of the block size.
    """
    if len(shape) != 2:
        raise ValueError(f"Expected a 2-d weight (out_features, in_features), got shape {tuple(shape)}.")
    if scheme.granularity == "tensor":
        return shape[0] * shape[1]
    if scheme.granularity == "channel":
        return shape[1]
    numel = shape[0] * shape[1]
    if numel % scheme.block_size:
        allowed = [size for size in SUPPORTED_BLOCK_SIZES if numel % size == 0]
        advice = (f"use a block size that divides it: {allowed}" if allowed
                  else "pad the weight with zeros to a multiple of the block size before quantizing it")
        raise ValueError(f"A weight of {numel} values (shape {tuple(shape)}) is not a multiple of block size "
                         f"{scheme.block_size}: {advice}.")
    return scheme.block_size


def block_scales(blocks: torch.Tensor, scheme_format: str, bits: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-row (scale, offset) of a format: absmax / (2^(b-1) - 1); (max - min) / (2^b - 1) and the minimum;
    NF4's absmax. The offset is None for the symmetric formats."""
    if scheme_format == "zero_point":
        minimum = blocks.amin(dim=1, keepdim=True)
        return (blocks.amax(dim=1, keepdim=True) - minimum) / (2**bits - 1), minimum
    absmax = blocks.abs().amax(dim=1, keepdim=True)
    return (absmax if scheme_format == "nf4" else absmax / (2 ** (bits - 1) - 1)), None


def encode(blocks: torch.Tensor, scheme_format: str, bits: int, scales: torch.Tensor,
           offsets: torch.Tensor | None = None) -> torch.Tensor:
    """The code of every value given its row's scale (and offset): signed integers for absmax,
    0 … 2^b - 1 for zero-point, the index of the nearest NF4 level for nf4."""
    if scheme_format == "nf4":
        codebook = _nf4_levels()
        return torch.bucketize(blocks / _nonzero(scales), (codebook[1:] + codebook[:-1]) / 2)
    if scheme_format == "zero_point":
        return _round((blocks - offsets) / _nonzero(scales)).clamp(0, 2**bits - 1)
    levels = 2 ** (bits - 1) - 1
    return _round(blocks / _nonzero(scales)).clamp(-levels, levels)


def decode(codes: torch.Tensor, scheme_format: str, scales: torch.Tensor,
           offsets: torch.Tensor | None = None) -> torch.Tensor:
    """The values :func:`encode`'s codes stand for, given the same per-row scales (and offsets)."""
    if scheme_format == "nf4":
        return _nf4_levels()[codes.long()] * scales
    if scheme_format == "zero_point":
        return codes.float() * scales + offsets
    return codes.float() * scales


def absmax_quantize(blocks: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric codes: each row scaled by its largest magnitude onto ``[-(2^(b-1) - 1), 2^(b-1) - 1]``.

    Returns (integer codes, one scale per row); ``codes · scale`` reconstructs.
    """
    scale, _ = block_scales(blocks, "absmax", bits)
    return encode(blocks, "absmax", bits, scale), scale


def zero_point_quantize(blocks: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric codes: each row's range ``[min, max]`` mapped onto ``[0, 2^b - 1]``.

    Returns (codes, scale per row, minimum per row); ``codes · scale + minimum``
    reconstructs, so a lopsided block wastes no level on values it never has.
    """
    scale, minimum = block_scales(blocks, "zero_point", bits)
    return encode(blocks, "zero_point", bits, scale, minimum), scale, minimum


@lru_cache(maxsize=1)
def _nf4_levels() -> torch.Tensor:
    """The codebook, computed once (every NF4 encode and decode reads it)."""
    return nf4_codebook()


def nf4_codebook() -> torch.Tensor:
    """The 16 NF4 levels: quantiles of a standard normal, scaled to [-1, 1], with an exact zero.

    8 positive and 7 negative levels (one side gets the extra one so that 0 is
    a level), at evenly spaced probabilities from 0.5 to ``NF4_OFFSET``.
    """
    positive = norm.ppf(torch.linspace(NF4_OFFSET, 0.5, 9)[:-1].numpy())
    negative = -norm.ppf(torch.linspace(NF4_OFFSET, 0.5, 8)[:-1].numpy())
    values = torch.tensor([*positive, 0.0, *negative], dtype=torch.float32).sort().values
    return values / values.max()


def nf4_quantize(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NF4 codes: each row divided by its absmax, every value mapped to the nearest codebook level.

    Returns (codes 0–15, absmax per row); ``codebook[codes] · absmax`` reconstructs.
    """
    absmax, _ = block_scales(blocks, "nf4", 4)
    return encode(blocks, "nf4", 4, absmax), absmax


def _round(values: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer, ties away from zero (as C's roundf in llama.cpp), not to even."""
    return values.sign() * (values.abs() + 0.5).floor()


def _nonzero(scale: torch.Tensor) -> torch.Tensor:
    """A scale safe to divide by: an all-zero block gets 1 (its codes are 0 either way)."""
    return torch.where(scale == 0, torch.ones_like(scale), scale)


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned codes (0 … 2^bits - 1) packed ``8 // bits`` to a byte, first code in the low bits."""
    per_byte = 8 // bits
    codes = codes.reshape(-1).to(torch.uint8)
    padded = torch.nn.functional.pad(codes, (0, -len(codes) % per_byte)).view(-1, per_byte)
    shifts = torch.arange(0, 8, bits, dtype=torch.uint8)
    return (padded << shifts).sum(dim=1, dtype=torch.uint8)


def unpack(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """The first ``count`` codes of :func:`pack`'s bytes."""
    shifts = torch.arange(0, 8, bits, dtype=torch.uint8)
    return ((packed.unsqueeze(1) >> shifts) & (2**bits - 1)).reshape(-1)[:count]


@dataclass
class QuantizedTensor:
    """A weight stored as packed codes plus per-block scales (and offsets): what the memory really holds."""

    packed: torch.Tensor
    scales: torch.Tensor
    shape: tuple[int, int]
    scheme: Scheme
    offsets: torch.Tensor | None = None  # zero_point: per-block minimum
    scale_scales: torch.Tensor | None = None  # double quant: fp32 scale per 256 block scales
    scale_mean: torch.Tensor | None = None  # double quant: the mean removed before quantizing the scales
    numel: int = field(init=False)

    def __post_init__(self) -> None:
        self.numel = self.shape[0] * self.shape[1]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The stored tensors by name (what a module keeps as buffers)."""
        named = {"packed": self.packed, "scales": self.scales, "offsets": self.offsets,
                 "scale_scales": self.scale_scales, "scale_mean": self.scale_mean}
        return {name: tensor for name, tensor in named.items() if tensor is not None}

    @property
    def nbytes(self) -> int:
        """Bytes actually stored."""
        return sum(tensor.nbytes for tensor in self.tensors().values())

    def float_scales(self) -> torch.Tensor:
        """One float scale per block (undoing double quantization if it was applied)."""
        if self.scale_scales is None:
            return self.scales.float()
        padded = torch.nn.functional.pad(self.scales.float(), (0, -len(self.scales) % DOUBLE_QUANT_BLOCK_SIZE))
        restored = padded.view(-1, DOUBLE_QUANT_BLOCK_SIZE) * self.scale_scales.view(-1, 1)
        return restored.reshape(-1)[: len(self.scales)] + self.scale_mean

    def values(self, codes: torch.Tensor) -> torch.Tensor:
        """The float32 weight that ``codes`` (as :func:`encode` gives them, one row per block) stand for under
        this tensor's scales and offsets."""
        offsets = None if self.offsets is None else self.offsets.float().view(-1, 1)
        return decode(codes, self.scheme.format, self.float_scales().view(-1, 1), offsets).view(self.shape)

    def dequantize(self) -> torch.Tensor:
        """The float32 weight the packed codes stand for."""
        codes = unpack(self.packed, self.scheme.bits, self.numel).view(-1, block_length(self.shape, self.scheme))
        if self.scheme.format == "absmax":
            codes = codes.float() - 2 ** (self.scheme.bits - 1)  # stored unsigned
        return self.values(codes)


def _codes(weight: torch.Tensor, scheme: Scheme) -> tuple[torch.Tensor, QuantizedTensor]:
    """The unpacked codes of ``weight`` and a QuantizedTensor holding its stored scales (codes not yet packed).

    Scales and offsets are rounded to the scheme's ``scale_dtype`` (or
    double-quantized) *before* the codes are chosen, so the codes fit what is
    stored. (llama.cpp chooses Q4_1/Q8_0 codes with the unrounded fp32 scale:
    the format is the same, a few codes of a random weight differ.)
    """
    shape = tuple(weight.shape)
    blocks = weight.detach().float().reshape(-1, block_length(shape, scheme))
    if scheme.format == "zero_point":  # the scale spans the range from the minimum as it is stored
        offsets = blocks.amin(dim=1).to(scheme.scale_dtype)
        scales = (blocks.amax(dim=1) - offsets.float()) / (2**scheme.bits - 1)
    else:
        scales, offsets = block_scales(blocks, scheme.format, scheme.bits)
    stored = QuantizedTensor(torch.empty(0, dtype=torch.uint8), scales.reshape(-1).to(scheme.scale_dtype),
                             shape, scheme, offsets)
    if scheme.double_quant:
        stored.scale_mean = stored.scales.float().mean().reshape(1)
        centred = stored.scales.float() - stored.scale_mean
        padded = torch.nn.functional.pad(centred, (0, -len(centred) % DOUBLE_QUANT_BLOCK_SIZE))
        scale_codes, scale_scales = absmax_quantize(padded.view(-1, DOUBLE_QUANT_BLOCK_SIZE), 8)
        stored.scales = scale_codes.reshape(-1)[: len(centred)].to(torch.int8)
        stored.scale_scales = scale_scales.reshape(-1)
    codes = encode(blocks, scheme.format, scheme.bits, stored.float_scales().view(-1, 1),
                   None if offsets is None else offsets.float().view(-1, 1))
    return codes, stored


def quantize(weight: torch.Tensor, scheme: Scheme) -> QuantizedTensor:
    """Quantize a 2-d weight under ``scheme`` into packed codes and per-block scales (and offsets)."""
    codes, stored = _codes(weight, scheme)
    if scheme.format == "absmax":
        codes = codes + 2 ** (scheme.bits - 1)  # stored unsigned
    stored.packed = pack(codes, scheme.bits)
    return stored


def round_trip(weight: torch.Tensor, scheme: Scheme) -> torch.Tensor:
    """``quantize(weight, scheme).dequantize()`` without packing the codes: the values a quantized layer uses."""
    codes, stored = _codes(weight, scheme)
    return stored.values(codes)


def quantization_error(weight: torch.Tensor, scheme: Scheme) -> float:
    """Root-mean-square error of the round trip, relative to the weight's RMS (0 for an all-zero weight)."""
    error = round_trip(weight, scheme) - weight.detach().float()
    mean_square = weight.detach().float().pow(2).mean()
    return 0.0 if mean_square == 0 else (error.pow(2).mean() / mean_square).sqrt().item()


def on_grid_fraction(weight: torch.Tensor, scheme: Scheme) -> float:
    """Share of the weights a round trip under ``scheme`` leaves exactly unchanged (1.0: already on its grid)."""
    return (round_trip(weight, scheme) == weight.detach().float()).float().mean().item()


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantized weight; backward: the gradient passes through unchanged."""

    @staticmethod
    def forward(ctx: object, weight: torch.Tensor, scheme: Scheme) -> torch.Tensor:
        return round_trip(weight, scheme).to(weight.dtype)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def fake_quantize(weight: torch.Tensor, scheme: Scheme) -> torch.Tensor:
    """The quantize-dequantize round trip, with a straight-through gradient (∂out/∂weight = 1)."""
    return _StraightThrough.apply(weight, scheme)


class FakeQuantization(nn.Module):
    """A parametrization: the layer computes with quantized weights while the float weights train."""

    def __init__(self, scheme: Scheme) -> None:
        super().__init__()
        self.scheme = scheme

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantize(weight, self.scheme)


class QuantizedLinear(nn.Module):
    """A linear layer whose weight is stored quantized and dequantized at every forward.

    Memory shrinks to the codes and scales; speed does not improve (a fused
    low-bit kernel, as in bitsandbytes or llama.cpp, is what makes it faster).
    """

    def __init__(self, linear: nn.Linear, scheme: Scheme) -> None:
        super().__init__()
        self.scheme, self.in_features, self.out_features = scheme, linear.in_features, linear.out_features
        stored = quantize(linear.weight, scheme)
        self.shape = stored.shape
        self.stored_names = tuple(stored.tensors())
        for name, tensor in stored.tensors().items():
            self.register_buffer(name, tensor)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def stored(self) -> QuantizedTensor:
        """The layer's weight as a QuantizedTensor over its current buffers."""
        return QuantizedTensor(shape=self.shape, scheme=self.scheme,
                               **{name: getattr(self, name) for name in self.stored_names})

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(inputs, self.stored().dequantize().to(inputs.dtype), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scheme={self.scheme.name!r}"


def quantizable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The model's linear layers by name, except the output head (tied to the embedding in the course's model)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return {name: module for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and module is not head}


def quantize_model(model: nn.Module, scheme: Scheme) -> int:
    """Replace every quantizable linear layer with a :class:`QuantizedLinear`, in place; returns how many."""
    layers = quantizable_linears(model)
    for name, linear in layers.items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, QuantizedLinear(linear, scheme))
    return len(layers)


@torch.no_grad()
def simulate_quantization(model: nn.Module, scheme: Scheme) -> int:
    """Round every quantizable linear weight to its quantized value, in place (float storage, same outputs
    as :func:`quantize_model`); returns how many layers."""
    layers = quantizable_linears(model)
    for linear in layers.values():
        linear.weight.copy_(round_trip(linear.weight, scheme).to(linear.weight.dtype))
    return len(layers)


def add_fake_quantization(model: nn.Module, scheme: Scheme) -> int:
    """Make every quantizable linear layer compute with quantized weights (for quantization-aware training)."""
    layers = quantizable_linears(model)
    for linear in layers.values():
        parametrize.register_parametrization(linear, "weight", FakeQuantization(scheme))
    return len(layers)


def remove_fake_quantization(model: nn.Module) -> int:
    """Undo :func:`add_fake_quantization`, keeping the trained float weights (quantize them for real next).

    Only fake quantization is removed; a layer's other weight parametrizations stay.
    """
    layers = [module for module in model.modules() if parametrize.is_parametrized(module, "weight")
              and any(isinstance(p, FakeQuantization) for p in module.parametrizations.weight)]
    for module in layers:
        others = [p for p in module.parametrizations.weight if not isinstance(p, FakeQuantization)]
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        for other in others:  # torch removes a weight's parametrizations all at once: put the others back
            parametrize.register_parametrization(module, "weight", other)
    return len(layers)
