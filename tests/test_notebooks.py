"""Every lesson, executed end to end on a fresh kernel with the default profile, offline.

Each run's wall time and peak memory go to build/test-notebooks/<lesson>.json, its per-cell table to
<lesson>.cells.md;
conftest.py prints the table at the end of the session. On the cpu profile every lesson must stay under the memory
budget (a laptop with 8 GB); on any profile a lesson leaves nothing in the temp folder. Its time is measured (its own
work apart from the shared artefacts it builds or waits for) and reported on the measurements page.
"""

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from course_lib.core.environment import default_profile_name
from course_lib.core.paths import build_dir
from course_lib.lessons.notebooks import MEMORY_BUDGET_GB, execute_lesson, lesson_paths

TIMES_DIR = build_dir() / "test-notebooks"


@pytest.mark.notebook
@pytest.mark.parametrize("path", lesson_paths(), ids=lambda p: p.stem)
def test_lesson_runs_top_to_bottom(path: Path) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = max(1, (os.cpu_count() or 1) // workers)
    run = execute_lesson(path, TIMES_DIR, num_threads=threads)
    (TIMES_DIR / f"{path.stem}.json").write_text(json.dumps(asdict(run) | {"threads": threads}))
    assert run.headline, f"{path.name} reported no headline (course_lib.core.report.headline)"
    assert not run.left_behind, (f"{path.name} left these in its temp folder (use tempfile.TemporaryDirectory and "
                                 f"clean it up): {run.left_behind}")
    if default_profile_name() == "cpu":
        assert run.peak_gb < MEMORY_BUDGET_GB, (f"{path.name} peaked at {run.peak_gb} GB on the cpu profile (budget "
                                                f"{MEMORY_BUDGET_GB:g} GB), during {run.largest_cell}")
