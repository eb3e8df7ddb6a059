"""``python -m course_lib.bench [--profile cpu]``: how fast this machine trains and runs SmolLM2 on Sakura rows.

Prints the machine (CPU model, whether it has AVX512-BF16), the rows' token
budget (tokens per training row, what the chat template itself adds, padding
at the profile's batch size) and, at 1 and 2 threads, fp32 matmul GFLOP/s,
training tokens per second on the same rows padded and padding-free (TRL's
collator both ways), one AdamW step's seconds (torch's loop and the fused kernel), greedy-generation tokens
per second and the model-FLOPs utilisation.
"""

import argparse
import random
import statistics

import pandas as pd
import torch
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.bench.throughput import measure_threads, padding_share
from course_lib.core.environment import cpu_model, setup
from course_lib.data.chat_format import completion_only_labels
from course_lib.infer.chat import chat_batch
from course_lib.model.parameters import count_parameters
from course_lib.sakura.datasets import rows_about, taught_facts

GENERATED_TOKENS = 32
TRAINING_BATCHES = 3  # batches in the order a random sampler draws them: their padding is typical, not a best case


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
    drawn = random.Random(profile.seed).sample(encoded, len(encoded))  # the order a random sampler draws
    shuffled = [len(row["input_ids"]) for row in drawn]
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} torch threads by default, torch {torch.__version__}")
    print(f"{len(rows)} training rows of {profile.num_facts} facts: median {statistics.median(lengths):g} tokens a row, "
          f"of which the chat template adds {statistics.median(t - c for t, c in zip(lengths, content)):g} "
          f"(the turn markers); padding {padding_share(shuffled, profile.train_batch_size):.0%} "
          f"of the positions at batch {profile.train_batch_size}")
    groups = [drawn[i * profile.train_batch_size:(i + 1) * profile.train_batch_size] for i in range(TRAINING_BATCHES)]
    padded, padding_free = ([DataCollatorForLanguageModeling(tokenizer.pad_token_id, padding_free=free)(group)
                             for group in groups] for free in (False, True))  # TRL's own collator, both ways
    prompt = chat_batch(tokenizer, [rows[0]["prompt"]])
    runs = [measure_threads(model, padded, padding_free, prompt, threads, GENERATED_TOKENS, tokenizer.pad_token_id)
            for threads in (1, 2)]
    print(pd.DataFrame([run.as_row() for run in runs]).to_string(index=False))
    print(f"(training: forward + backward on {TRAINING_BATCHES} batches of {profile.train_batch_size} rows, "
          f"{profile.dtype}; AdamW step: over all {count_parameters(model):,} parameters; generation: "
          f"{GENERATED_TOKENS} greedy tokens after one prompt; MFU: 6 × parameters × padding-free training tokens/s ÷ matmul FLOP/s)")


if __name__ == "__main__":
    main()
