"""A toy chat model built in memory: a word-level tokenizer with a chat template and a tiny random Llama.

Reinforcement learning needs hundreds of updates to show its dynamics (a reward that rises, a KL
penalty that holds it back); on a CPU a real model affords a handful. A policy over a dozen words
runs hundreds of PPO steps in seconds, through exactly the same code as SmolLM2.
"""

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL_WORDS = ("<pad>", "<eos>", "<unk>", "user", "assistant", ":")
"""Padding, end of turn, unknown, and the words the chat template writes."""


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """One token per word (plus :data:`SPECIAL_WORDS`), and a chat template: ``user : … <eos> assistant :``."""
    vocabulary = list(SPECIAL_WORDS) + [w for w in words if w not in SPECIAL_WORDS]
    backend = Tokenizer(models.WordLevel({word: i for i, word in enumerate(vocabulary)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} <eos> {% endfor %}"
                               "{% if add_generation_prompt %}assistant :{% endif %}")
    return tokenizer


def tiny_llama(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> LlamaForCausalLM:
    """A random two-layer Llama over the tokenizer's vocabulary (about 20 k parameters for a dozen words)."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    return LlamaForCausalLM(config)
