import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from course_lib.model.layer_dropping import decoder_layers, drop_layers, evenly_spaced_layers


def four_block_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=101, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize(("num_layers", "keep_every", "expected"), [
    (30, 2, list(range(1, 30, 2))), (30, 3, list(range(2, 30, 3))), (4, 1, [0, 1, 2, 3]), (5, 5, [4]),
])
def test_evenly_spaced_layers_keeps_the_last_block(num_layers, keep_every, expected):
    assert evenly_spaced_layers(num_layers, keep_every) == expected


@pytest.mark.parametrize("keep_every", [0, 31])
def test_evenly_spaced_layers_refuses_impossible_strides(keep_every):
    with pytest.raises(ValueError, match="keep_every must be between 1 and the 30 layers"):
        evenly_spaced_layers(30, keep_every)


def test_student_block_i_is_teacher_block_k():
    teacher = four_block_llama()
    student = drop_layers(teacher, [1, 3])
    assert student.config.num_hidden_layers == 2 and len(decoder_layers(student)) == 2
    assert teacher.config.num_hidden_layers == 4 and len(decoder_layers(teacher)) == 4  # the teacher is unchanged
    for student_index, teacher_index in enumerate([1, 3]):
        student_block = decoder_layers(student)[student_index].state_dict()
        teacher_block = decoder_layers(teacher)[teacher_index].state_dict()
        assert student_block.keys() == teacher_block.keys()
        assert all(torch.equal(student_block[key], teacher_block[key]) for key in teacher_block)
        assert decoder_layers(student)[student_index].self_attn.layer_idx == student_index
    assert torch.equal(student.lm_head.weight, teacher.lm_head.weight)
    assert student.lm_head.weight.data_ptr() != teacher.lm_head.weight.data_ptr()  # a copy, not shared storage
    assert student.lm_head.weight is student.get_input_embeddings().weight  # still tied


def test_student_computes_the_teachers_function_without_the_dropped_blocks():
    teacher = four_block_llama()
    student = drop_layers(teacher, [0, 2])
    ids = torch.tensor([[5, 17, 42, 8]])
    # Skip blocks 1 and 3 of the teacher by hand: replace them with identity blocks.
    kept = decoder_layers(teacher)
    hidden = teacher.model.embed_tokens(ids)
    positions = torch.arange(ids.shape[1])[None]
    embeddings = teacher.model.rotary_emb(hidden, positions)
    for index in (0, 2):
        hidden = kept[index](hidden, position_embeddings=embeddings, position_ids=positions)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    by_hand = teacher.lm_head(teacher.model.norm(hidden))
    assert torch.allclose(student(ids).logits, by_hand, atol=1e-5)


def test_student_generates_with_a_kv_cache_like_without():
    student = drop_layers(four_block_llama(), [1, 3])
    ids = torch.tensor([[3, 9, 27]])
    cached = student.generate(ids, max_new_tokens=8, do_sample=False, use_cache=True, pad_token_id=0)
    uncached = student.generate(ids, max_new_tokens=8, do_sample=False, use_cache=False, pad_token_id=0)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize(("keep", "message"), [
    ([], "keep is empty"), ([2, 1], "increasing, distinct"), ([1, 1], "increasing, distinct"),
    ([0, 4], "between 0 and 3"), ([-1, 2], "between 0 and 3"),
])
def test_drop_layers_refuses_bad_indices(keep, message):
    with pytest.raises(ValueError, match=message):
        drop_layers(four_block_llama(), keep)


def test_per_layer_config_follows_the_kept_blocks():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=101, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, use_sliding_window=True, sliding_window=8,
                         max_window_layers=2)
    teacher = Qwen2ForCausalLM(config).eval()
    assert teacher.config.layer_types == ["full_attention"] * 2 + ["sliding_attention"] * 2
    student = drop_layers(teacher, [1, 2])
    assert student.config.layer_types == ["full_attention", "sliding_attention"]
    ids = torch.tensor([[3, 9, 27, 5]])
    cached = student.generate(ids, max_new_tokens=6, do_sample=False, use_cache=True, pad_token_id=0)
    assert torch.equal(cached, student.generate(ids, max_new_tokens=6, do_sample=False, use_cache=False, pad_token_id=0))


def test_drop_layers_names_what_it_supports():
    with pytest.raises(TypeError, match="Llama-style decoders"):
        drop_layers(torch.nn.Linear(2, 2), [0])
