"""The shipped folder: every file, merged weights that equal the adapter, identical greedy ids from a fresh process."""

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import LoraConfig, get_peft_model

from course_lib.model.toy import tiny_llama
from course_lib.ship.folder import (
    REQUIRED_FILES, check_model_folder, fresh_process_greedy, greedy_token_ids, merge_adapter, save_model_folder,
)


def test_the_folder_holds_every_file_and_only_safetensors_weights(shipped: Any) -> None:
    names = {path.name for path in shipped.folder.iterdir()}
    assert set(REQUIRED_FILES) <= names
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) or name.startswith("adapter_") for name in names)
    assert not [p for p in shipped.folder.parent.iterdir() if p != shipped.folder]  # no staging folder left behind


def test_the_generation_config_is_the_greedy_one_the_course_evaluated_with(shipped: Any) -> None:
    settings = json.loads((shipped.folder / "generation_config.json").read_text())
    assert settings["do_sample"] is False and settings["max_new_tokens"] == shipped.max_new_tokens
    assert settings["eos_token_id"] == shipped.tokenizer.eos_token_id
    assert settings["pad_token_id"] == shipped.tokenizer.pad_token_id


def test_the_merged_model_computes_what_the_adapter_did(shipped: Any) -> None:
    assert not torch.allclose(shipped.adapter_logits, shipped.base_logits, atol=1e-3)  # the adapter matters
    torch.testing.assert_close(shipped.merged_logits, shipped.adapter_logits, atol=1e-5, rtol=1e-5)


def test_a_fresh_process_reloads_the_folder_and_generates_the_same_greedy_ids(shipped: Any) -> None:
    in_memory = greedy_token_ids(shipped.model, shipped.tokenizer, shipped.prompts, shipped.max_new_tokens)
    assert all(in_memory) and len({tuple(ids) for ids in in_memory}) > 1  # real, distinct replies
    assert fresh_process_greedy(shipped.folder, shipped.prompts, shipped.max_new_tokens) == in_memory


def test_a_missing_file_is_named(shipped: Any, tmp_path: Path) -> None:
    damaged = shutil.copytree(shipped.folder, tmp_path / "damaged")
    (damaged / "chat_template.jinja").unlink()
    (damaged / "README.md").unlink()
    missing = r"chat_template\.jinja \(the chat template.*README\.md \(the model card"
    with pytest.raises(FileNotFoundError, match=missing):
        check_model_folder(damaged)
    with pytest.raises(FileNotFoundError, match="No model folder"):
        check_model_folder(tmp_path / "nowhere")


def test_merging_and_saving_refuse_the_wrong_kind_of_model(shipped: Any, toy_card: Any, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="needs a peft PeftModel"):
        merge_adapter(shipped.model)
    adapter = get_peft_model(tiny_llama(shipped.tokenizer), LoraConfig(r=2, target_modules=["q_proj"]))
    with pytest.raises(TypeError, match=r"merge it first with merge_adapter"):
        save_model_folder(adapter, shipped.tokenizer, tmp_path / "unmerged", toy_card, shipped.max_new_tokens)
    assert list(tmp_path.iterdir()) == []


def test_saving_again_replaces_a_model_folder_but_not_a_folder_of_other_files(shipped: Any, toy_card: Any,
                                                                               tmp_path: Path) -> None:
    model = tiny_llama(shipped.tokenizer)
    for max_new_tokens in (5, 7):
        folder = save_model_folder(model, shipped.tokenizer, tmp_path / "model", toy_card, max_new_tokens)
    assert json.loads((folder / "generation_config.json").read_text())["max_new_tokens"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no config.json"):
        save_model_folder(model, shipped.tokenizer, tmp_path / "notes", toy_card, 5)
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["mine.txt"]
