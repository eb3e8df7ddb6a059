"""Shared test set-up: offline, one thread per worker, seeded; shared fixtures; a notebook time and memory table at the end.

Markers: ``real_model`` on tests that load the real pretrained weights or their
converted folder, ``notebook`` on the end-to-end lesson runs; ``make test-fast``
leaves both out.
"""

import json
import os
import time

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import course_lib  # noqa: F401  (sets the offline variables before heavy imports)
from course_lib.assets.models import load_tokenizer
from course_lib.core.paths import build_dir
from course_lib.lessons.notebooks import (ARTEFACT_BUILDERS, COURSE_READERS, MEASUREMENTS_PAGE, LessonRun, format_table,
                                         measurements_page)

torch.set_num_threads(1)
TIMES_DIR = build_dir() / "test-notebooks"
# Tests that build the artefact every lesson from 05 on reuses: they run before anything else.
SHARED_ARTEFACT_TESTS = ("tests/recipes/test_shared_model.py",)


SESSION_STARTED = time.time()  # the table at the end holds only the lessons this session ran


def pytest_sessionstart(session: pytest.Session) -> None:
    TIMES_DIR.mkdir(parents=True, exist_ok=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start with the test that builds the shared fine-tuned model, then the notebooks: the lessons that build shared
    artefacts, then the capstone (it reads their artefacts, and its course-wide table holds the rows of the lessons
    run before it), then the heaviest (later lessons), so later lessons reuse those artefacts and two workers finish
    together. Work stealing takes lessons from the end of the list, so a lesson placed last would start early: the
    first lessons, which need no fine-tuned model, run on the other worker while the shared model trains."""
    notebooks = sorted((i for i in items if i.get_closest_marker("notebook")), key=lambda i: i.nodeid, reverse=True)
    builders = {f"[{lesson}]": rank for rank, lesson in enumerate(ARTEFACT_BUILDERS)}
    readers = tuple(f"[{lesson}]" for lesson in COURSE_READERS)

    def position(item: pytest.Item) -> int:
        if item.nodeid.endswith(readers):
            return len(builders)
        return next((rank for name, rank in builders.items() if item.nodeid.endswith(name)), len(builders) + 1)

    notebooks.sort(key=position)
    first = [i for i in items if i.nodeid.startswith(SHARED_ARTEFACT_TESTS)]
    items[:] = first + notebooks + [i for i in items if i not in notebooks and i not in first]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if "PYTEST_XDIST_WORKER" in os.environ:
        return
    records = [json.loads(p.read_text()) for p in sorted(TIMES_DIR.glob("*.json")) if p.stat().st_mtime >= SESSION_STARTED]
    if not records:
        return
    runs = [LessonRun(**{k: v for k, v in r.items() if k != "threads"}) for r in records]
    threads, workers = records[0]["threads"], config.getoption("numprocesses", None) or 1
    table = format_table(runs)
    terminalreporter.section(f"notebook wall times and peak memory ({threads} thread(s) each)")
    terminalreporter.write_line(table)
    report = TIMES_DIR / "report.txt"
    report.write_text(table + "\n")
    page = TIMES_DIR / MEASUREMENTS_PAGE
    page.write_text(measurements_page(runs, f"`make test` ({threads} thread(s) a lesson, {workers} at a time)"))
    terminalreporter.write_line(f"(written to {report}; the measurements page, with each lesson's slowest cells, to "
                                f"{page})")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer (needs the converted model folder: mark the test ``real_model``)."""
    return load_tokenizer("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def chat_tokenizer():
    """GPT-2's BPE tokenizer (an offline asset, no model weights) with a minimal chat template: SFT without SmolLM2."""
    tokenizer = load_tokenizer("gpt2")
    tokenizer.chat_template = (
        "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|endoftext|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@pytest.fixture
def tiny_llama():
    """A factory of random 2-layer Llamas (SmolLM2's vocabulary size unless told): they train in a second."""

    def make(vocab_size: int = 49152) -> LlamaForCausalLM:
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
        return LlamaForCausalLM(config)

    return make
