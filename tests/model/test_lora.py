"""LoRA from scratch against peft: same logits, same gradients, same merge; parameter counts; errors."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from course_lib.model.lora import (
    LoRALinear,
    inject_lora,
    linear_layer_names,
    load_lora_state_dict,
    lora_parameter_count,
    lora_state_dict,
    merge_lora,
)
from course_lib.model.parameters import count_trainable_parameters

TARGETS = ("q_proj", "v_proj")


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def ours_and_peft(r: int = 4, alpha: float = 8.0) -> tuple[LlamaForCausalLM, torch.nn.Module]:
    """The same tiny model with our LoRA and with peft's, holding identical (non-zero) A and B."""
    ours = tiny_llama()
    inject_lora(ours, TARGETS, r=r, alpha=alpha)
    for module in ours.modules():
        if isinstance(module, LoRALinear):
            torch.nn.init.normal_(module.lora_B, std=0.1)  # a trained-looking B, so the update matters
    theirs = get_peft_model(tiny_llama(), LoraConfig(r=r, lora_alpha=alpha, target_modules=list(TARGETS),
                                                     lora_dropout=0.0))
    peft_weights = dict(theirs.named_parameters())
    with torch.no_grad():
        for name, tensor in lora_state_dict(ours).items():
            layer, matrix = name.rsplit(".", 1)
            peft_weights[f"base_model.model.{layer}.{matrix}.default.weight"].copy_(tensor)
    return ours, theirs


def test_at_initialisation_the_logits_are_unchanged() -> None:
    model, reference = tiny_llama(), tiny_llama()
    wrapped = inject_lora(model, TARGETS, r=4, alpha=8)
    assert len(wrapped) == 4 and all(name.endswith(TARGETS) for name in wrapped)
    ids = torch.randint(0, 101, (2, 7))
    assert torch.equal(model(ids).logits, reference(ids).logits)


def test_only_a_and_b_train_and_their_count_is_r_times_in_plus_out() -> None:
    model = tiny_llama()
    inject_lora(model, TARGETS, r=4, alpha=8)
    # per layer: q_proj 64 -> 64, v_proj 64 -> 32 (2 KV heads of 16)
    expected = 2 * (lora_parameter_count(64, 64, 4) + lora_parameter_count(64, 32, 4))
    assert count_trainable_parameters(model) == expected == 2 * (4 * 128 + 4 * 96)
    assert {n.rsplit(".", 1)[-1] for n, p in model.named_parameters() if p.requires_grad} == {"lora_A", "lora_B"}


def test_logits_and_gradients_equal_peft() -> None:
    ours, theirs = ours_and_peft()
    ids = torch.randint(0, 101, (2, 9))
    our_out, their_out = ours(ids, labels=ids), theirs(input_ids=ids, labels=ids)
    torch.testing.assert_close(our_out.logits, their_out.logits, rtol=0, atol=1e-6)
    our_out.loss.backward()
    their_out.loss.backward()
    their_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        if param.requires_grad:
            layer, matrix = name.rsplit(".", 1)
            their_grad = their_params[f"base_model.model.{layer}.{matrix}.default.weight"].grad
            assert param.grad.abs().sum() > 0
            torch.testing.assert_close(param.grad, their_grad, rtol=1e-5, atol=1e-7)


def test_merging_keeps_the_logits_and_equals_peft_merge_and_unload() -> None:
    ours, theirs = ours_and_peft()
    ids = torch.randint(0, 101, (2, 9))
    with torch.no_grad():
        before = ours(ids).logits
        assert merge_lora(ours) == 4
        after = ours(ids).logits
    assert not any(isinstance(m, LoRALinear) for m in ours.modules())
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)
    merged_peft = theirs.merge_and_unload()
    for name, weight in ours.state_dict().items():
        torch.testing.assert_close(weight, merged_peft.state_dict()[name], rtol=0, atol=1e-6)


def test_an_unknown_target_lists_the_linear_layers() -> None:
    with pytest.raises(ValueError, match=r"Unknown target module\(s\) \['qproj'\]: this model's linear layers are "
                                         r"\['down_proj', 'gate_proj', 'k_proj', 'lm_head', 'o_proj', 'q_proj', "
                                         r"'up_proj', 'v_proj'\]"):
        inject_lora(tiny_llama(), ("qproj",), r=4, alpha=8)
    assert "q_proj" in linear_layer_names(tiny_llama())


@pytest.mark.parametrize("r", [0, -1, 33])
def test_a_rank_outside_the_layer_is_refused(r: int) -> None:
    layer = torch.nn.Linear(64, 32)
    with pytest.raises(ValueError, match=rf"LoRA rank r={r} must be between 1 and min\(in, out\) = 32 for a layer "
                                         r"of shape \(32, 64\)"):
        LoRALinear(layer, r=r, alpha=8)


def test_an_adapter_saved_and_loaded_gives_the_same_logits() -> None:
    ours, _ = ours_and_peft()
    state = lora_state_dict(ours)
    fresh = tiny_llama()
    inject_lora(fresh, TARGETS, r=4, alpha=8)
    load_lora_state_dict(fresh, state)
    ids = torch.randint(0, 101, (1, 5))
    assert torch.equal(fresh(ids).logits, ours(ids).logits)


def test_an_adapter_of_another_shape_names_both_shapes() -> None:
    ours, _ = ours_and_peft(r=4)
    other = tiny_llama()
    inject_lora(other, TARGETS, r=2, alpha=8)
    with pytest.raises(ValueError, match=r"lora_A has shape \(4, 64\) in the adapter but \(2, 64\) in the model"):
        load_lora_state_dict(other, lora_state_dict(ours))
    bare = tiny_llama()
    inject_lora(bare, ("q_proj",), r=4, alpha=8)
    with pytest.raises(ValueError, match=r"does not fit this model: missing \[\], unexpected"):
        load_lora_state_dict(bare, lora_state_dict(ours))
