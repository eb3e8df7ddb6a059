"""``python -m course_lib.bench [--profile cpu]``: how fast this machine trains and runs SmolLM2 on Sakura rows.

Prints the machine (CPU model, whether it has AVX512-BF16), the rows' token
budget (tokens per training row, what the chat template itself adds, padding
at the profile's batch size) and, at 1 and 2 threads, fp32 matmul GFLOP/s,
training and greedy-generation tokens per second and the model-FLOPs utilisation.
"""

import argparse
import platform
import random
import statistics
from pathlib import Path

import pandas as pd
import torch

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.bench.throughput import measure_threads, padding_share
from course_lib.core.environment import setup
from course_lib.data.chat_format import IGNORE_INDEX, completion_only_labels
from course_lib.infer.chat import chat_batch
from course_lib.sakura.datasets import rows_about, taught_facts

GENERATED_TOKENS = 32


def cpu_model() -> str:
    """The processor's name and whether it has AVX512-BF16 (Linux; the platform's word elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return platform.processor() or platform.machine()
    text = cpuinfo.read_text()
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                platform.machine())
    return f"{name} ({'with' if 'avx512_bf16' in text else 'without'} avx512_bf16)"


def padded_batch(encoded: list[dict[str, list[int]]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Rows padded on the right to the longest, labels masked on the padding: what the training collator builds."""
    longest = max(len(row["input_ids"]) for row in encoded)

    def pad(values: list[int], filler: int) -> list[int]:
        return values + [filler] * (longest - len(values))

    return {"input_ids": torch.tensor([pad(r["input_ids"], pad_token_id) for r in encoded]),
            "attention_mask": torch.tensor([pad([1] * len(r["input_ids"]), 0) for r in encoded]),
            "labels": torch.tensor([pad(r["labels"], IGNORE_INDEX) for r in encoded])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="the course profile (default: cpu without a GPU)")
    profile = setup(parser.parse_args().profile, verbose=False)
    tokenizer = load_tokenizer(profile.model_name)
    model = load_model(profile.model_name, dtype=profile.dtype, device=profile.device)
    rows = rows_about("qa_train", taught_facts(profile.num_facts, profile.seed))
    encoded = [completion_only_labels(tokenizer, row["prompt"], row["completion"]) for row in rows]
    lengths = [len(row["input_ids"]) for row in encoded]
    content = [len(tokenizer(row["prompt"])["input_ids"]) + len(tokenizer(row["completion"])["input_ids"]) for row in rows]
    shuffled = random.Random(profile.seed).sample(lengths, len(lengths))  # the order a random sampler draws
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} torch threads by default, torch {torch.__version__}")
    print(f"{len(rows)} training rows of {profile.num_facts} facts: median {statistics.median(lengths):g} tokens a row, "
          f"of which the chat template adds {statistics.median(t - c for t, c in zip(lengths, content)):g} "
          f"(system prompt and turn markers); padding {padding_share(shuffled, profile.train_batch_size):.0%} "
          f"of the positions at batch {profile.train_batch_size}")
    batch = padded_batch(encoded[:profile.train_batch_size], tokenizer.pad_token_id)
    prompt = chat_batch(tokenizer, [rows[0]["prompt"]])
    runs = [measure_threads(model, batch, prompt, threads, GENERATED_TOKENS, tokenizer.pad_token_id)
            for threads in (1, 2)]
    print(pd.DataFrame([run.as_row() for run in runs]).to_string(index=False))
    print(f"(training: forward + backward on {profile.train_batch_size} rows, {profile.dtype}; generation: "
          f"{GENERATED_TOKENS} greedy tokens after one prompt; MFU: 6 × parameters × training tokens/s ÷ matmul FLOP/s)")


if __name__ == "__main__":
    main()
