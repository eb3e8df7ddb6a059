"""Byte-level BPE from scratch against the tokenizers library: same merges, same ids, same encodings."""

import pytest
from tokenizers import pre_tokenizers

from course_lib.assets.corpora import load_plays
from course_lib.model.bpe import (
    byte_to_unicode,
    merge_pair,
    pair_counts,
    pre_tokenize,
    train_byte_level_bpe,
    word_counts,
)
from course_lib.model.tokenization import bpe_merges, train_bpe

# Accents, CJK, an emoji, full-width and superscript digits, a combining accent, tabs and runs of spaces.
ODD_TEXTS = ["naïve café 東京 😀 ２０２４ ²³ ‘quoted’  \t\n  x's we're   ", "aaaa aaa aa a", "\u0301e 1234567 a__b ..."]


def test_byte_to_unicode_gives_each_byte_a_printable_character() -> None:
    mapping = byte_to_unicode()
    assert len(mapping) == len(set(mapping.values())) == 256
    assert (mapping[ord(" ")], mapping[ord("\n")], mapping[ord("A")], mapping[0]) == ("Ġ", "Ċ", "A", "Ā")
    assert all(character.isprintable() for character in mapping.values())


def test_pre_tokenize_splits_like_gpt2() -> None:
    assert pre_tokenize("Hi there, it's 2024!") == ["Hi", "Ġthere", ",", "Ġit", "'s", "Ġ2024", "!"]
    assert pre_tokenize("a   b") == ["a", "ĠĠ", "Ġb"]  # a run of spaces leaves its last one to the next word
    assert pre_tokenize("não") == ["nÃ£o"]  # 'ã' is two bytes
    library = pre_tokenizers.ByteLevel(add_prefix_space=False)
    for text in ODD_TEXTS:
        assert pre_tokenize(text) == [word for word, _ in library.pre_tokenize_str(text)]


def test_pair_counts_and_one_merge_by_hand() -> None:
    words = word_counts(["low low lower", "slow"])
    assert words == {"low": 1, "Ġlow": 1, "Ġlower": 1, "slow": 1}
    counts = pair_counts(words)
    assert counts[("l", "o")] == 4 and counts[("o", "w")] == 4 and counts[("Ġ", "l")] == 2 and counts[("e", "r")] == 1
    assert merge_pair(list("lower"), ("o", "w")) == ["l", "ow", "e", "r"]
    assert merge_pair(list("aaa"), ("a", "a")) == ["aa", "a"]  # left to right, no overlap
    assert merge_pair(["l", "ow"], ("o", "w")) == ["l", "ow"]


@pytest.fixture(scope="module")
def shakespeare() -> tuple[list[str], list[str]]:
    """About 20 kB of one play to train on and 5 kB of another to encode."""
    plays = load_plays()
    first, second = sorted(plays)[:2]
    return plays[first][:20_000].splitlines(), plays[second][:5_000].splitlines()


@pytest.mark.parametrize("vocab_size", [300, 1000])
def test_training_learns_the_merges_and_ids_of_tokenizers(shakespeare, vocab_size: int) -> None:
    train, held_out = shakespeare
    texts = train + ODD_TEXTS
    ours = train_byte_level_bpe(texts, vocab_size)
    reference = train_bpe(texts, vocab_size)
    assert len(ours.merges) == vocab_size - len(byte_to_unicode())
    assert ours.merges == bpe_merges(reference)  # same pairs, same order
    assert ours.vocab == reference.get_vocab()  # same ids
    counts = pair_counts(word_counts(texts))
    assert counts[ours.merges[0]] == max(counts.values())
    for text in held_out + ODD_TEXTS:
        assert ours.encode(text) == reference.encode(text).ids, text
        assert ours.decode(ours.encode(text)) == text


def test_fewer_merges_give_more_tokens(shakespeare) -> None:
    bpe = train_byte_level_bpe(shakespeare[0], 1000)
    lengths = [len(bpe.tokenize(" the king", max_merges=n)) for n in (0, 10, 100, None)]
    assert lengths[0] == len(" the king".encode("utf-8")) and lengths == sorted(lengths, reverse=True)
    assert bpe.tokenize(" the king") == ["Ġthe", "Ġk", "ing"]


def test_training_stops_when_no_pair_is_left() -> None:
    bpe = train_byte_level_bpe(["abab"], vocab_size=1000)
    assert bpe.merges == [("a", "b"), ("ab", "ab")] and len(bpe.vocab) == 258
    with pytest.raises(ValueError, match="vocab_size=100"):
        train_byte_level_bpe(["abab"], vocab_size=100)
