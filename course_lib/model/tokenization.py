"""Tokenizers the course builds itself, and what a tokenizer costs a language.

A model never sees text, only integer ids. :class:`CharTokenizer` is the
simplest mapping (one id per character, the vocabulary of a tiny model
pretrained from scratch); :func:`train_bpe` learns a byte-level BPE
vocabulary like GPT-2's with the ``tokenizers`` library (the reference that
:mod:`course_lib.model.bpe`, the same algorithm from scratch, is checked
against); :func:`token_cost`
measures how many tokens a tokenizer spends on a text, which is what an API
bills and what fills a model's context window.
"""

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers


class CharTokenizer:
    """One token per character: the vocabulary is the sorted set of characters of a text.

    ``CharTokenizer(training_text)`` gives every character of the training text an id.
    """

    def __init__(self, characters: Iterable[str]) -> None:
        self.vocab = sorted(set(characters))
        self._ids = {character: index for index, character in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """The id of each character; a character outside the vocabulary is an error that names it."""
        unknown = sorted(set(text) - self._ids.keys())
        if unknown:
            raise ValueError(f"Characters not in the vocabulary: {unknown!r}")
        return [self._ids[character] for character in text]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a sequence of ids."""
        return "".join(self.vocab[index] for index in ids)


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer (GPT-2's scheme) trained on ``texts``.

    Training starts from the 256 byte values and repeatedly merges the most
    frequent adjacent pair into a new token until the vocabulary has
    ``vocab_size`` entries. Spaces become 'Ġ' and stay attached to the word
    that follows, as in GPT-2 and SmolLM2.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def bpe_merges(tokenizer: Tokenizer) -> list[tuple[str, str]]:
    """The merges a BPE tokenizer learned, in the order it learned them (most frequent pair first)."""
    return [tuple(pair) for pair in json.loads(tokenizer.to_str())["model"]["merges"]]


@dataclass(frozen=True)
class TokenCost:
    """How many tokens a tokenizer spends on some text, against its words and characters."""

    tokens: int
    words: int
    characters: int

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words

    @property
    def characters_per_token(self) -> float:
        return self.characters / self.tokens


def strip_accents(text: str) -> str:
    """'função' -> 'funcao': decompose each letter and drop the accents, to see what accents cost in tokens."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of ``text`` without special tokens, for a transformers or a ``tokenizers`` tokenizer."""
    if isinstance(tokenizer, Tokenizer):
        return len(tokenizer.encode(text, add_special_tokens=False).ids)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def token_cost(tokenizer: Any, texts: Iterable[str]) -> TokenCost:
    """Total tokens, whitespace-separated words and characters of ``texts`` under ``tokenizer``."""
    texts = list(texts)
    return TokenCost(
        tokens=sum(count_tokens(tokenizer, text) for text in texts),
        words=sum(len(text.split()) for text in texts),
        characters=sum(len(text) for text in texts),
    )
