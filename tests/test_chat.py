"""Batched chat generation gives the same replies as one prompt at a time."""

import pytest

from course_lib.chat import chat, chat_messages, generate_replies
from course_lib.models import load_model, load_tokenizer


@pytest.fixture(scope="module")
def smollm():
    return load_model("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")


def test_left_padded_batch_equals_single_prompts(smollm) -> None:
    model, tokenizer = smollm
    prompts = ["What is the capital of France?", "Name a colour.", "Do you like sushi with a lot of wasabi on it?"]
    batched = generate_replies(model, tokenizer, prompts, max_new_tokens=8, batch_size=3)
    assert batched == [chat(model, tokenizer, p, max_new_tokens=8) for p in prompts]
    assert "Paris" in batched[0]


def test_system_prompt_comes_first() -> None:
    assert chat_messages("hi", system="Be brief.") == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
    ]
    assert chat_messages("hi") == [{"role": "user", "content": "hi"}]


def test_a_conversation_prompt_equals_its_user_message(smollm) -> None:
    model, tokenizer = smollm
    as_text = generate_replies(model, tokenizer, ["Name a colour."], max_new_tokens=6, system="Be brief.")
    as_messages = generate_replies(model, tokenizer, [chat_messages("Name a colour.", system="Be brief.")], max_new_tokens=6)
    assert as_text == as_messages
