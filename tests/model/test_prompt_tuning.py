"""Prompt tuning from scratch against peft: same logits and loss from the same virtual-token embeddings."""

import pytest
import torch
from peft import PromptTuningConfig, TaskType, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from course_lib.model.parameters import count_trainable_parameters
from course_lib.model.prompt_tuning import IGNORE_INDEX, SoftPromptModel

VIRTUAL = 5


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def test_only_the_virtual_tokens_train() -> None:
    model = SoftPromptModel(tiny_llama(), VIRTUAL)
    assert count_trainable_parameters(model) == VIRTUAL * 64
    assert [name for name, p in model.named_parameters() if p.requires_grad] == ["prompt"]


def test_text_initialisation_uses_the_texts_token_embeddings() -> None:
    base = tiny_llama()
    model = SoftPromptModel(base, VIRTUAL, init_token_ids=[7, 8])
    expected = base.get_input_embeddings().weight[torch.tensor([7, 8, 7, 8, 7])]
    assert torch.equal(model.prompt.detach(), expected)


def test_logits_and_loss_equal_peft_prompt_tuning() -> None:
    ours = SoftPromptModel(tiny_llama(), VIRTUAL)
    theirs = get_peft_model(tiny_llama(), PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=VIRTUAL))
    with torch.no_grad():
        theirs.prompt_encoder["default"].embedding.weight.copy_(ours.prompt)
    ids = torch.randint(0, 101, (2, 6))
    mask = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1]])
    our_out = ours(ids, attention_mask=mask, labels=ids)
    their_out = theirs(input_ids=ids, attention_mask=mask, labels=ids)
    assert our_out.logits.shape == (2, VIRTUAL + 6, 101)
    torch.testing.assert_close(our_out.logits, their_out.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(our_out.loss, their_out.loss, rtol=0, atol=1e-6)


def test_the_virtual_positions_are_never_scored() -> None:
    model = SoftPromptModel(tiny_llama(), VIRTUAL)
    ids = torch.randint(0, 101, (1, 4))
    extended = model.extend(ids, torch.ones_like(ids), labels=ids)
    assert extended["labels"][0, :VIRTUAL].tolist() == [IGNORE_INDEX] * VIRTUAL
    assert extended["attention_mask"].shape == (1, VIRTUAL + 4) and extended["inputs_embeds"].shape == (1, VIRTUAL + 4, 64)


def test_at_least_one_virtual_token() -> None:
    with pytest.raises(ValueError, match="num_virtual_tokens must be at least 1, got 0"):
        SoftPromptModel(tiny_llama(), 0)
