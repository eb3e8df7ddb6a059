"""Character tokenizer, BPE training and token costs, checked by hand-countable examples."""

import pytest

from course_lib.assets.models import load_tokenizer
from course_lib.model.tokenization import CharTokenizer, bpe_merges, strip_accents, token_cost, train_bpe


def test_char_tokenizer_round_trips_and_names_unknown_characters() -> None:
    tokenizer = CharTokenizer("to be or not")
    assert tokenizer.vocab == [" ", "b", "e", "n", "o", "r", "t"] and len(tokenizer) == 7
    ids = tokenizer.encode("not to be")
    assert ids == [3, 4, 6, 0, 6, 4, 0, 1, 2]
    assert tokenizer.decode(ids) == "not to be"
    with pytest.raises(ValueError, match="'z'"):
        tokenizer.encode("zebra")


TEXTS = ["low lower lowest", "newer newest wider", "low low slow"] * 20


def test_bpe_first_merge_is_the_most_frequent_pair() -> None:
    tokenizer = train_bpe(TEXTS, vocab_size=270)
    merges = bpe_merges(tokenizer)
    assert len(merges) == 270 - 256  # every new token beyond the 256 bytes is one merge
    assert merges[0] == ("l", "o")  # 6 times a line, tied with ("o", "w"): the pair of smaller ids wins
    # Merged tokens are concatenations of earlier symbols, and frequent words become one token.
    assert tokenizer.get_vocab()["".join(merges[0])] >= 256
    assert tokenizer.encode("low").tokens == ["low"]
    assert tokenizer.decode(tokenizer.encode("slow lowest").ids) == "slow lowest"


def test_token_cost_counts_tokens_words_and_characters() -> None:
    gpt2 = load_tokenizer("gpt2")
    cost = token_cost(gpt2, ["The cat sat.", "Hello world"])
    assert (cost.tokens, cost.words, cost.characters) == (4 + 2, 3 + 2, 12 + 11)
    assert cost.tokens_per_word == pytest.approx(6 / 5) and cost.characters_per_token == pytest.approx(23 / 6)
    bpe = train_bpe(TEXTS, vocab_size=300)
    assert token_cost(bpe, ["lowest"]).tokens == len(bpe.encode("lowest").ids)


def test_strip_accents_keeps_the_letters() -> None:
    assert strip_accents("Função, orçamento, não é próximo!") == "Funcao, orcamento, nao e proximo!"
    assert strip_accents("plain ASCII") == "plain ASCII"
