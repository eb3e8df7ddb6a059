"""Chat generation: batched equals one at a time, prompt lengths are counted, the tokenizer is left as found,
a progress bar only where there are several batches."""

import pytest
import torch

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.data.chat_format import chat_messages
from course_lib.infer.chat import chat, generate_chat, generate_replies

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def smollm():
    return load_model("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")


def test_left_padded_batch_equals_single_prompts(smollm) -> None:
    model, tokenizer = smollm
    prompts = ["What is the capital of France?", "Name a colour.", "Do you like sushi with a lot of wasabi on it?"]
    batched = generate_replies(model, tokenizer, prompts, max_new_tokens=8, batch_size=3)
    assert batched == [chat(model, tokenizer, p, max_new_tokens=8) for p in prompts]
    assert "Paris" in batched[0]


def test_a_progress_bar_only_over_several_batches(smollm, capsys) -> None:
    model, tokenizer = smollm
    generate_replies(model, tokenizer, ["Name a colour."] * 2, max_new_tokens=2, batch_size=2, progress=True)
    assert "generating" not in capsys.readouterr().err
    generate_replies(model, tokenizer, ["Name a colour."] * 2, max_new_tokens=2, batch_size=1, progress=True)
    assert "generating" in capsys.readouterr().err


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


def test_prompt_lengths_are_the_templated_prompts_and_padding_side_is_restored(smollm) -> None:
    model, tokenizer = smollm
    prompts = ["Hi", [{"role": "user", "content": "Name three colours, please."}]]
    side = tokenizer.padding_side
    generation = generate_chat(model, tokenizer, prompts, max_new_tokens=2, batch_size=2)
    expected = [len(tokenizer.apply_chat_template(chat_messages("Hi"), add_generation_prompt=True, tokenize=True,
                                                  return_dict=True)["input_ids"]),
                len(tokenizer.apply_chat_template(prompts[1], add_generation_prompt=True, tokenize=True,
                                                  return_dict=True)["input_ids"])]
    assert generation.prompt_tokens == expected and expected[0] != expected[1]
    assert len(generation.replies) == 2 and tokenizer.padding_side == side


def test_position_ids_skip_left_padding() -> None:
    from course_lib.infer.chat import position_ids

    torch.testing.assert_close(position_ids(torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])),
                               torch.tensor([[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]))


def test_a_chat_batch_is_left_padded_and_leaves_the_tokenizer_as_it_was(smollm2_tokenizer) -> None:
    from course_lib.infer.chat import chat_batch

    smollm2_tokenizer.padding_side = "right"
    batch = chat_batch(smollm2_tokenizer, ["Hi", "What does the Salmon Nigiri cost, please?"], system="Be brief.")
    assert smollm2_tokenizer.padding_side == "right"
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][:, -1].tolist() == [1, 1]
    text = smollm2_tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], tokenize=False,
        add_generation_prompt=True)
    alone = smollm2_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert batch["input_ids"][0, -len(alone):].tolist() == alone
