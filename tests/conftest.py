"""Shared test set-up: offline, one thread per worker, seeded; a notebook timing table at the end."""

import json
import os
import shutil

import course_lib  # noqa: F401  (sets the offline variables before heavy imports)
import pytest
import torch

from course_lib.notebooks import LessonRun, format_table
from course_lib.paths import build_dir

torch.set_num_threads(1)
TIMES_DIR = build_dir() / "test-notebooks"


def pytest_sessionstart(session: pytest.Session) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:  # the controller, once: forget old timings
        shutil.rmtree(TIMES_DIR, ignore_errors=True)
        TIMES_DIR.mkdir(parents=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the notebooks first, heaviest (later lessons) leading, so two workers finish together."""
    notebooks = sorted((i for i in items if i.nodeid.startswith("tests/test_notebooks.py")), key=lambda i: i.nodeid, reverse=True)
    items[:] = notebooks + [i for i in items if i not in notebooks]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if "PYTEST_XDIST_WORKER" in os.environ or not TIMES_DIR.exists():
        return
    records = [json.loads(p.read_text()) for p in sorted(TIMES_DIR.glob("*.json"))]
    if not records:
        return
    runs = [LessonRun(**{k: v for k, v in r.items() if k != "threads"}) for r in records]
    terminalreporter.section(f"notebook wall times ({records[0]['threads']} thread(s) each)")
    terminalreporter.write_line(format_table(runs))
    report = TIMES_DIR / "report.txt"
    report.write_text(format_table(runs) + "\n")
    terminalreporter.write_line(f"(written to {report})")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
