"""The SFT recipe: taught facts, CPU-safe config, cached training, drift measure."""

import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import course_lib.sft as sft
from course_lib.data import load_rows
from course_lib.dataprep import completion_only_labels
from course_lib.models import load_tokenizer
from course_lib.profiles import PROFILES
from course_lib.sft import SFTRecipe, answer_nll, rows_about, taught_facts, training_config, training_losses

TOKENIZER = load_tokenizer("smollm2-135m-instruct")


def tiny_llama(*_: object, **__: object) -> LlamaForCausalLM:
    """A random 2-layer Llama with SmolLM2's vocabulary: trains in a second."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(TOKENIZER), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(config)


def test_taught_facts_are_a_seeded_sample_of_the_tested_facts() -> None:
    every = taught_facts(None, seed=1)
    assert len(every) == len({r["completion"] for r in load_rows("qa_test")})
    assert taught_facts(8, seed=1) == taught_facts(8, seed=1) != taught_facts(8, seed=2)
    assert taught_facts(8, seed=1) <= every and len(taught_facts(8, seed=1)) == 8


def test_rows_about_keeps_every_phrasing_of_a_fact() -> None:
    facts = taught_facts(3, seed=0)
    rows = rows_about("qa_train", facts)
    assert {r["completion"] for r in rows} == facts
    assert len(rows) >= 2 * len(facts)


def test_training_config_is_cpu_safe_on_the_cpu_profile(tmp_path: Path) -> None:
    config = training_config(tmp_path, PROFILES["cpu"], max_steps=3)
    assert (config.use_cpu, config.bf16, config.fp16, config.dataloader_num_workers) == (True, False, False, 0)
    assert (config.max_steps, config.per_device_train_batch_size, config.report_to) == (3, 4, [])


def test_recipe_trains_once_then_comes_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(sft, "load_model", tiny_llama)
    monkeypatch.setattr(sft, "load_tokenizer", lambda name: TOKENIZER)
    profile = PROFILES["cpu"].with_overrides(train_steps=4, train_batch_size=2, num_threads=1)
    recipe = SFTRecipe.from_profile(profile, num_facts=2, learning_rate=1e-2)
    folder = sft.sakura_sft_model(recipe, profile)
    losses = training_losses(json.loads((folder / sft.HISTORY_FILE).read_text()))
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    monkeypatch.setattr(sft, "fine_tune", lambda *a, **k: pytest.fail("a cache hit must not train"))
    assert sft.sakura_sft_model(recipe, profile) == folder


def test_a_different_recipe_is_a_different_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(sft, "load_model", tiny_llama)
    monkeypatch.setattr(sft, "load_tokenizer", lambda name: TOKENIZER)
    profile = PROFILES["cpu"].with_overrides(train_steps=1, train_batch_size=2, num_threads=1)
    first = sft.sakura_sft_model(SFTRecipe.from_profile(profile, 2, 1e-3), profile)
    second = sft.sakura_sft_model(SFTRecipe.from_profile(profile, 2, 2e-3), profile)
    assert first != second and first.exists() and second.exists()


def test_answer_nll_is_the_mean_completion_loss() -> None:
    model = tiny_llama().eval()
    rows = [{"prompt": "Do you deliver?", "completion": "Yes."}, {"prompt": "Hi", "completion": "Hello there!"}]
    expected = []
    for row in rows:
        encoded = completion_only_labels(TOKENIZER, row["prompt"], row["completion"])
        logits = model(torch.tensor([encoded["input_ids"]])).logits[0, :-1]
        labels = torch.tensor(encoded["labels"][1:])
        keep = labels != -100
        expected.append(torch.nn.functional.cross_entropy(logits[keep], labels[keep]).item())
    assert answer_nll(model, TOKENIZER, rows) == pytest.approx(sum(expected) / 2, rel=1e-5)
