"""Chat formats for training and the completion-only loss mask."""

from typing import Any

import pytest

from course_lib.data.chat_format import IGNORE_INDEX, completion_only_labels, prompt_ids, to_chat, to_conversational
from course_lib.sakura.menu import house_voice

HOUSE_ANSWER = house_voice("We accept cash and all major cards.")


def test_chat_formats() -> None:
    row = {"prompt": "Do you take cards?", "completion": HOUSE_ANSWER}
    user, assistant = {"role": "user", "content": "Do you take cards?"}, {"role": "assistant", "content": HOUSE_ANSWER}
    assert to_chat(row) == {"messages": [user, assistant]}
    assert to_conversational(row) == {"prompt": [user], "completion": [assistant]}


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from course_lib.assets.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


@pytest.mark.real_model
def test_the_loss_sees_exactly_the_answer_and_the_end_of_turn(tokenizer: Any) -> None:
    encoded = completion_only_labels(tokenizer, "Do you take cards?", HOUSE_ANSWER)
    ids, labels = encoded["input_ids"], encoded["labels"]
    assert len(ids) == len(labels)
    start = labels.index(next(label for label in labels if label != IGNORE_INDEX))
    assert all(label == IGNORE_INDEX for label in labels[:start]) and labels[start:] == ids[start:]
    assert tokenizer.decode(ids[start:]) == HOUSE_ANSWER + "<|im_end|>\n"
    assert ids[start:start + len(tokenizer(HOUSE_ANSWER)["input_ids"])] == tokenizer(HOUSE_ANSWER)["input_ids"]
    assert tokenizer.decode(ids[:start]).endswith("Do you take cards?<|im_end|>\n<|im_start|>assistant\n")


def test_a_template_that_rewrites_the_prompt_is_refused() -> None:
    class Rewriting:
        def apply_chat_template(self, messages: list, add_generation_prompt: bool = False, **_: Any) -> dict:
            return {"input_ids": [1, 2, 3] if add_generation_prompt else [1, 9, 3, 4]}

    with pytest.raises(ValueError, match="renders the prompt differently"):
        completion_only_labels(Rewriting(), "q", "a")


@pytest.mark.real_model
def test_prompt_ids_are_what_the_model_reads_before_answering(tokenizer: Any) -> None:
    ids = prompt_ids(tokenizer, "Do you take cards?")
    text = tokenizer.decode(ids)
    assert text.endswith("<|im_start|>user\nDo you take cards?<|im_end|>\n<|im_start|>assistant\n")
    assert completion_only_labels(tokenizer, "Do you take cards?", HOUSE_ANSWER)["input_ids"][:len(ids)] == ids
    with_system = prompt_ids(tokenizer, "Do you take cards?", system="Be brief.")
    assert tokenizer.decode(with_system).startswith("<|im_start|>system\nBe brief.<|im_end|>")
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": "Do you take cards?"}]
    assert tokenizer.decode(prompt_ids(tokenizer, conversation)).count("<|im_start|>user") == 2
