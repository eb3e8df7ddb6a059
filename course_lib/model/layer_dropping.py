"""A smaller model from a bigger one by keeping some of its transformer blocks (DistilBERT's student).

No smaller pretrained model of the same family ships offline, and a student
that starts from the teacher's own blocks learns much faster than one that
starts from random weights: DistilBERT (Sanh et al. 2019) kept one block out of
two. The student shares the teacher's tokenizer, embedding and output head, so
their token distributions can be compared position by position (logit
distillation, speculative decoding).
"""

import copy
from collections.abc import Sequence
from typing import Any

from torch import nn


def evenly_spaced_layers(num_layers: int, keep_every: int) -> list[int]:
    """Indices of every ``keep_every``-th block, counted back from the last block, which is always kept.

    The last block writes the hidden state the output head reads, so keeping
    it spares the head a representation it never saw. Counting from the top,
    the first block is kept only when ``num_layers - 1`` is a multiple of
    ``keep_every``.
    """
    if not 1 <= keep_every <= num_layers:
        raise ValueError(f"keep_every must be between 1 and the {num_layers} layers, got {keep_every}")
    return list(range(num_layers - 1, -1, -keep_every))[::-1]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of a Hugging Face decoder (``model.model.layers``)."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(f"{type(model).__name__} has no `model.layers` list of blocks: layer dropping supports "
                        "Llama-style decoders (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, ...)")
    return layers


def drop_layers(model: Any, keep: Sequence[int]) -> Any:
    """A copy of ``model`` with only the blocks at indices ``keep`` (in order); ``model`` is unchanged.

    Each kept block is a copy of the teacher's block with the same weights; the
    embedding, final norm and output head are copied as they are. The config's
    layer count and the blocks' cache indices are updated so that generation
    with a KV cache works.
    """
    num_layers = len(decoder_layers(model))
    keep = list(keep)
    if not keep:
        raise ValueError("keep is empty: a student needs at least one block")
    if sorted(set(keep)) != keep or keep[0] < 0 or keep[-1] >= num_layers:
        raise ValueError(f"keep must be increasing, distinct block indices between 0 and {num_layers - 1}, got {keep}")
    student = copy.deepcopy(model)
    layers = decoder_layers(student)
    student.model.layers = nn.ModuleList(layers[index] for index in keep)
    for new_index, layer in enumerate(student.model.layers):
        for module in layer.modules():  # attention (and any other cache user) indexes the KV cache by layer
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config = student.config
    config.num_hidden_layers = len(keep)
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = [config.layer_types[index] for index in keep]
    return student
