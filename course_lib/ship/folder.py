"""The shipped model folder: merged weights, tokenizer with its chat template, greedy settings and a model card.

A user of the model gets one folder and nothing else: no adapter to apply,
no course code, no notes on how it was evaluated. So the folder holds the
adapter merged into the base (peft's ``merge_and_unload``: a plain model that
``from_pretrained`` and ``transformers serve`` load with no peft), the
tokenizer with the chat template the model was trained on, a
``generation_config.json`` with the greedy settings the course evaluated
with, and the model card (:mod:`course_lib.ship.card`). Weights are
safetensors only. That the folder really is the model is checked the only
convincing way: a fresh Python process loads it and must produce exactly
the token ids the model in memory produced (:func:`fresh_process_greedy`;
run as ``python -m course_lib.ship.folder FOLDER MAX_NEW_TOKENS [--device D]``
with the prompts as JSON on stdin).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedModel

from course_lib.data.chat_format import Messages
from course_lib.infer.chat import chat_batch

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
# What a complete folder holds, and what each file is for (named in the error when one is missing).
REQUIRED_FILES = {
    "config.json": "the architecture",
    WEIGHTS_FILE: "the merged weights",
    "generation_config.json": "the greedy settings the model was evaluated with",
    "tokenizer.json": "the tokenizer",
    "tokenizer_config.json": "the tokenizer's special tokens",
    "chat_template.jinja": "the chat template the model was trained on",
    CARD_FILE: "the model card",
}
FRESH_PROCESS_TIMEOUT_S = 300.0


def merge_adapter(model: PeftModel) -> PreTrainedModel:
    """The adapter folded into the base weights (W + B·A·scale): a plain model with no peft at inference.

    peft's ``merge_and_unload`` with ``safe_merge`` (refuses weights that
    become NaN). The merge happens in place: ``model`` is spent afterwards.
    """
    if not isinstance(model, PeftModel):
        raise TypeError(f"merge_adapter needs a peft PeftModel (an adapter on a base), got {type(model).__name__}.")
    return model.merge_and_unload(safe_merge=True)


def greedy_generation_config(tokenizer: Any, max_new_tokens: int) -> GenerationConfig:
    """Greedy decoding up to ``max_new_tokens``, stopping at the tokenizer's end of turn: the course's settings.

    Saved as the folder's ``generation_config.json``, so ``generate`` and a
    server that reads it (``transformers serve``) answer as the course evaluated.
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("The tokenizer has no eos token: generation would never stop. Set tokenizer.eos_token first.")
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=pad_token_id)


def check_model_folder(folder: Path | str) -> Path:
    """The folder, after checking it holds every file of :data:`REQUIRED_FILES`; an error names each missing one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No model folder at {folder}: write it with save_model_folder(...).")
    missing = [f"{name} ({purpose})" for name, purpose in REQUIRED_FILES.items() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"The model folder {folder} is incomplete, missing: {', '.join(missing)}. "
                                "Write it again with save_model_folder(...).")
    return folder


def save_model_folder(model: PreTrainedModel, tokenizer: Any, folder: Path | str, card: ModelCard,
                      max_new_tokens: int) -> Path:
    """Write the complete folder (see :data:`REQUIRED_FILES`), replacing any earlier one; returns it.

    ``model`` is a plain (merged) model: :func:`merge_adapter` first. Its
    generation config becomes the greedy one (:func:`greedy_generation_config`),
    also in memory, so the model and the folder decode alike. An earlier model
    folder is replaced; a folder with other files is refused. The files are
    written into a temporary folder next to ``folder`` and moved into place
    only once complete: an interrupted save leaves no half-written model.
    """
    if isinstance(model, PeftModel):
        raise TypeError("This is an adapter on a base model: merge it first with merge_adapter(model).")
    if not tokenizer.chat_template:
        raise ValueError("The tokenizer has no chat template: set tokenizer.chat_template to the one used in training.")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not (folder / "config.json").is_file():
        raise FileExistsError(f"{folder} holds files but no model (no config.json): choose an empty or new folder.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    model.generation_config = greedy_generation_config(tokenizer, max_new_tokens)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        card.save(staging / CARD_FILE)
        check_model_folder(staging)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_model_folder(folder: Path | str, device: str = "cpu") -> tuple[PreTrainedModel, Any]:
    """The model (in its saved dtype, eval mode) and tokenizer of a shipped folder, as a user loads them."""
    folder = check_model_folder(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto", use_safetensors=True, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    return model.to(device).eval(), tokenizer


@torch.no_grad()
def greedy_token_ids(model: PreTrainedModel, tokenizer: Any, prompts: list[str] | list[Messages],
                     max_new_tokens: int) -> list[list[int]]:
    """The token ids the model generates for each prompt, greedily, with the shipped settings.

    Prompts go through the chat template (:func:`course_lib.infer.chat.chat_batch`)
    one at a time, as a server receives them: no padding, so the ids are
    exactly those of one request. They end with the eos id when the model
    stopped on its own.
    """
    settings = greedy_generation_config(tokenizer, max_new_tokens)
    replies = []
    for prompt in prompts:
        batch = chat_batch(tokenizer, [prompt]).to(model.device)
        output = model.generate(**batch, generation_config=settings)
        replies.append(output[0, batch["input_ids"].shape[1]:].tolist())
    return replies


def fresh_process_greedy(folder: Path | str, prompts: list[str] | list[Messages], max_new_tokens: int,
                         device: str = "cpu", timeout: float = FRESH_PROCESS_TIMEOUT_S) -> list[list[int]]:
    """:func:`greedy_token_ids` of the folder loaded by a new Python process: what a user gets from the folder alone.

    Nothing in memory can leak into the answer (a weight not saved, a
    tokenizer setting not written). The child uses as many CPU threads as
    this process, so floating-point sums run in the same order.
    """
    folder = check_model_folder(folder)
    command = [sys.executable, "-m", __name__, str(folder), str(max_new_tokens), "--device", device]
    env = os.environ | {"OMP_NUM_THREADS": str(torch.get_num_threads())}
    try:
        result = subprocess.run(command, input=json.dumps(prompts), capture_output=True, text=True,
                                timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"Reloading {folder} in a fresh process took over {timeout:g} s: "
                           "pass a larger timeout or fewer prompts.") from None
    if result.returncode != 0:
        raise RuntimeError(f"Reloading {folder} in a fresh process failed (exit {result.returncode}):\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Command line of :func:`fresh_process_greedy`: prompts (JSON) on stdin, token ids (JSON) on stdout's last line."""
    parser = argparse.ArgumentParser(description="Greedy token ids of a shipped model folder.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("max_new_tokens", type=int)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    model, tokenizer = load_model_folder(args.folder, args.device)
    print(json.dumps(greedy_token_ids(model, tokenizer, json.load(sys.stdin), args.max_new_tokens)))


if __name__ == "__main__":
    main()
