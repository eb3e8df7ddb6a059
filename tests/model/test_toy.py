"""The toy chat model: one token per word, a chat template that ends where the answer starts, a tiny Llama."""

from course_lib.model.toy import SPECIAL_WORDS, tiny_llama, word_tokenizer


def test_word_tokenizer_has_one_token_per_word_and_a_chat_template() -> None:
    tokenizer = word_tokenizer(["tuna", "salmon", "tuna"])
    assert len(tokenizer) == len(SPECIAL_WORDS) + 2
    assert tokenizer.decode(tokenizer("tuna salmon")["input_ids"]) == "tuna salmon"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "tuna"}], tokenize=False, add_generation_prompt=True)
    assert text == "user : tuna <eos> assistant :"
    assert tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"]) == ["user", ":", "tuna", "<eos>", "assistant", ":"]


def test_tiny_llama_matches_the_vocabulary_and_is_seeded() -> None:
    tokenizer = word_tokenizer(["tuna", "salmon"])
    model, again = tiny_llama(tokenizer, seed=1), tiny_llama(tokenizer, seed=1)
    assert model.config.vocab_size == len(tokenizer) and model.config.eos_token_id == tokenizer.eos_token_id
    assert all((a == b).all() for a, b in zip(model.parameters(), again.parameters()))
    assert sum(p.numel() for p in model.parameters()) < 50_000
