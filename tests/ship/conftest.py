"""A shipped toy model, built once for the ship tests: a tiny Llama with a LoRA adapter, merged and saved."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import LoraConfig, get_peft_model

from course_lib.eval.intervals import rate_interval
from course_lib.model.toy import tiny_llama, word_tokenizer
from course_lib.ship.card import model_card
from course_lib.ship.folder import merge_adapter, save_model_folder

WORDS = "the sushi is fresh today salmon tuna rice costs yen open closed what when".split()
PROMPTS = ["what is fresh today", "when is the sushi open", "what costs yen"]
MAX_NEW_TOKENS = 12


@dataclass(frozen=True)
class Shipped:
    """The saved folder, the merged model and tokenizer in memory, and the base's, adapter's and merged logits."""

    folder: Path
    prompts: list[str]
    max_new_tokens: int
    model: Any
    tokenizer: Any
    base_logits: torch.Tensor
    adapter_logits: torch.Tensor
    merged_logits: torch.Tensor


def make_card() -> Any:
    """A model card with one measured score."""
    return model_card(model_name="toy-sushi", base_model="course/tiny-llama", license="apache-2.0",
                      data="Twelve words about a sushi bar.", recipe={"method": "LoRA", "r": 4},
                      scores={"accuracy": rate_interval([True, False, True, True])},
                      limitations=["Random weights: it knows nothing."])


@pytest.fixture
def toy_card() -> Any:
    """A fresh model card for the toy model."""
    return make_card()


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Shipped:
    """The toy model with a random LoRA adapter, merged and saved with :func:`save_model_folder`."""
    tokenizer = word_tokenizer(WORDS)
    base = tiny_llama(tokenizer)
    torch.manual_seed(1)  # init_lora_weights=False: a random, non-zero update, so merging changes the weights
    adapter = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                              init_lora_weights=False)).eval()
    inputs = tokenizer(PROMPTS[0], return_tensors="pt")
    with torch.no_grad():
        with adapter.disable_adapter():
            base_logits = adapter(**inputs).logits
        adapter_logits = adapter(**inputs).logits
        merged = merge_adapter(adapter)
        merged_logits = merged(**inputs).logits
    folder = save_model_folder(merged, tokenizer, tmp_path_factory.mktemp("ship") / "toy-sushi", make_card(),
                               MAX_NEW_TOKENS)
    return Shipped(folder, PROMPTS, MAX_NEW_TOKENS, merged, tokenizer, base_logits, adapter_logits, merged_logits)
