"""Byte-level byte-pair encoding (BPE) from scratch, merge for merge what the ``tokenizers`` library learns.

BPE (Sennrich et al. 2016, arXiv:1508.07909) starts from single symbols and
repeatedly merges the most frequent adjacent pair into a new symbol; the
ordered list of merges is the tokenizer. GPT-2 (Radford et al. 2019) made it
*byte-level*: the symbols start as the 256 byte values, each shown as a
printable character (a space is 'Ġ'), so any text can be encoded and nothing
is ever unknown. Text is first cut into words by a regular expression, and
pairs never cross a word boundary.

:func:`train_byte_level_bpe` reproduces ``tokenizers``' ``BpeTrainer`` with a
``ByteLevel(add_prefix_space=False)`` pre-tokenizer exactly: the same
alphabet order (characters by code point), the same tie-break between pairs
of equal count (the pair of smaller ids first), and the same lazily updated
priority queue, so merges and ids agree with the library's, which the tests
check. :meth:`ByteLevelBPE.encode` applies the merges to new text, the
lowest-ranked (earliest learned) pair first.
"""

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import regex

# GPT-2's pre-tokenizer: contractions, letters, digits or other symbols (each with at most one leading space),
# then whitespace. A run of spaces keeps its last space for the word that follows.
WORD_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

Pair = tuple[int, int]


@cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each of the 256 bytes: printable bytes keep their own character,
    the others (space, control bytes, ...) get the characters from U+0100 on, so a space becomes 'Ġ'."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [byte for byte in range(256) if byte not in printable]
    mapping = {byte: chr(byte) for byte in printable}
    mapping.update({byte: chr(256 + index) for index, byte in enumerate(others)})
    return mapping


def pre_tokenize(text: str) -> list[str]:
    """The words of ``text`` as byte-level strings: 'Hi there' -> ['Hi', 'Ġthere']."""
    to_unicode = byte_to_unicode()
    return ["".join(to_unicode[byte] for byte in word.encode("utf-8")) for word in WORD_PATTERN.findall(text)]


def word_counts(texts: Iterable[str]) -> Counter[str]:
    """How often each pre-tokenized word occurs in ``texts``: BPE trains on these counts, not on the raw text."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(pre_tokenize(text))
    return counts


def pair_counts(words: Counter[str]) -> Counter[tuple[str, str]]:
    """How often each pair of adjacent symbols occurs inside the words, weighted by word count: BPE's first count.

    The most frequent pair is the first merge :func:`train_byte_level_bpe` learns.
    """
    counts: Counter[tuple[str, str]] = Counter()
    for word, count in words.items():
        for pair in zip(word, word[1:]):
            counts[pair] += count
    return counts


def merge_pair(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    """``symbols`` with every occurrence of ``pair`` merged into one symbol, scanning left to right.

    Occurrences do not overlap: merging ('a', 'a') in ['a', 'a', 'a'] gives ['aa', 'a'].
    """
    merged: list[str] = []
    index = 0
    while index < len(symbols):
        if index + 1 < len(symbols) and (symbols[index], symbols[index + 1]) == pair:
            merged.append(symbols[index] + symbols[index + 1])
            index += 2
        else:
            merged.append(symbols[index])
            index += 1
    return merged


def _merge_in_word(word: list[int], pair: Pair, new_id: int) -> list[tuple[Pair, int]]:
    """Merge ``pair`` into ``new_id`` in place, left to right; return the pair-count changes (one word)."""
    first, second = pair
    changes: list[tuple[Pair, int]] = []
    index = 0
    while index < len(word):
        if word[index] == first and index + 1 < len(word) and word[index + 1] == second:
            if index > 0:
                changes += [((word[index - 1], first), -1), ((word[index - 1], new_id), 1)]
            word[index : index + 2] = [new_id]
            if index < len(word) - 1:
                changes += [((second, word[index + 1]), -1), ((new_id, word[index + 1]), 1)]
        index += 1
    return changes


@dataclass
class ByteLevelBPE:
    """A trained byte-level BPE tokenizer: its vocabulary (token -> id) and its merges, in the order learned."""

    vocab: dict[str, int]
    merges: list[tuple[str, str]]

    def __post_init__(self) -> None:
        # A pair learned twice keeps its last rank, as in tokenizers (its merge table is a map built in order).
        self._ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._tokens = {index: token for token, index in self.vocab.items()}

    def tokenize_word(self, word: str, max_merges: int | None = None) -> list[str]:
        """The tokens of one pre-tokenized word: apply the learned pair of lowest rank (learned earliest)
        until none applies. ``max_merges`` uses only the first merges, to watch a word grow into tokens."""
        ranks = self._ranks if max_merges is None else {p: r for p, r in self._ranks.items() if r < max_merges}
        symbols = list(word)
        while len(symbols) > 1:
            candidates = [pair for pair in zip(symbols, symbols[1:]) if pair in ranks]
            if not candidates:
                break
            symbols = merge_pair(symbols, min(candidates, key=ranks.__getitem__))
        return symbols

    def tokenize(self, text: str, max_merges: int | None = None) -> list[str]:
        """The tokens of ``text``, word by word."""
        return [token for word in pre_tokenize(text) for token in self.tokenize_word(word, max_merges)]

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``."""
        return [self.vocab[token] for token in self.tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a sequence of ids: join the tokens, map each character back to its byte, decode UTF-8.

        A slice of ids can cut a multi-byte character in two; its bytes decode to U+FFFD instead of failing.
        """
        to_byte = {character: byte for byte, character in byte_to_unicode().items()}
        text = "".join(self._tokens[index] for index in ids)
        return bytes(to_byte[character] for character in text).decode("utf-8", errors="replace")


def train_byte_level_bpe(texts: Iterable[str], vocab_size: int) -> ByteLevelBPE:
    """Learn merges on ``texts`` until the vocabulary (256 bytes + merged tokens) has ``vocab_size`` entries.

    Each step merges the most frequent adjacent pair (weighted by word count;
    on a tie, the pair whose ids are smaller). Counts are kept up to date
    incrementally: merging a pair only changes the counts of its neighbours,
    in the words that contain it, so a stale queue entry is re-queued with its
    current count when it reaches the top (as ``tokenizers`` does).
    """
    if vocab_size < 256:
        raise ValueError(f"vocab_size={vocab_size} is below the 256 byte values every byte-level BPE starts from")
    counts_of_words = word_counts(texts)
    alphabet = set(byte_to_unicode().values()) | {character for word in counts_of_words for character in word}
    id_to_token = sorted(alphabet, key=ord)
    token_to_id = {token: index for index, token in enumerate(id_to_token)}
    words = [[token_to_id[character] for character in word] for word in counts_of_words]
    counts = list(counts_of_words.values())

    pair_count: Counter[Pair] = Counter()
    where: dict[Pair, set[int]] = {}
    for index, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_count[pair] += counts[index]
            where.setdefault(pair, set()).add(index)
    order = itertools.count()  # entries of equal count and pair leave the queue in the order they came in
    queue = [(-pair_count[pair], pair, next(order), positions) for pair, positions in where.items()]
    heapq.heapify(queue)

    merges: list[tuple[str, str]] = []
    while len(token_to_id) < vocab_size and queue:
        negative_count, pair, _, positions = heapq.heappop(queue)
        if -negative_count != pair_count[pair]:  # stale: re-queue with the current count
            heapq.heappush(queue, (-pair_count[pair], pair, next(order), positions))
            continue
        if pair_count[pair] < 1:
            break
        new_token = id_to_token[pair[0]] + id_to_token[pair[1]]
        if new_token not in token_to_id:
            token_to_id[new_token] = len(id_to_token)
            id_to_token.append(new_token)
        new_id = token_to_id[new_token]
        merges.append((id_to_token[pair[0]], id_to_token[pair[1]]))
        new_where: dict[Pair, set[int]] = {}
        for index in positions:
            for changed, change in _merge_in_word(words[index], pair, new_id):
                pair_count[changed] += change * counts[index]
                if change > 0:
                    new_where.setdefault(changed, set()).add(index)
        for changed, changed_positions in new_where.items():
            if pair_count[changed] > 0:
                heapq.heappush(queue, (-pair_count[changed], changed, next(order), changed_positions))
    return ByteLevelBPE(vocab=token_to_id, merges=merges)
