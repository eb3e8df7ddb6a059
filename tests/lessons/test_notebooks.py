"""The lesson runner's measurements: peak memory of the lesson's processes, the time of each cell, and the table
and page that report them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.lessons.notebooks import (MEMORY_BUDGET_GB, TIME_BUDGET_S, CellTime, LessonRun, cell_times,
                                          execute_lesson, format_table, measurements_page, run_course)

ALLOCATE_300_MB = "import time; block = bytearray(300_000_000); time.sleep(1.0)"


def peak_in_a_fresh_process(body: str) -> float:
    """Run ``body`` inside PeakMemory(include_self=False) in a new interpreter, whose only children are body's own
    (a pytest worker may have others), and return the peak in GB."""
    script = "\n".join([
        "import subprocess, sys",
        "from course_lib.core.memory import PeakMemory",
        "with PeakMemory(include_self=False, interval_s=0.05) as memory:",
        *(f"    {line}" for line in body.splitlines()),
        "print(memory.peak_gb)",
    ])
    return float(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout)


def test_peak_memory_counts_the_children_and_their_children() -> None:
    # A child that starts a grandchild, as the kernel does when a lesson runs a subprocess.
    nested = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {ALLOCATE_300_MB!r}])"
    peak = peak_in_a_fresh_process(f"subprocess.run([sys.executable, '-c', {nested!r}], check=True)")
    assert 0.3 <= peak < 0.6, peak


def test_peak_memory_ignores_the_calling_process() -> None:
    peak = peak_in_a_fresh_process("block = bytearray(300_000_000)  # in this process, not in a child\n"
                                   "subprocess.run([sys.executable, '-c', 'pass'], check=True)")
    assert peak < 0.1, peak


def test_table_shows_time_and_memory_and_no_number_for_an_unmeasured_run() -> None:
    table = format_table([
        LessonRun("00_setup", 12.0, 1.25, "model loaded", "out/00.ipynb"),
        LessonRun("05_sft", 30.5, None, "", "out/05.ipynb", error="cell 3 failed"),
    ]).splitlines()
    assert table[0].split() == ["lesson", "time", "peak", "mem", "headline"]
    assert table[2].split() == ["00_setup", "12.0s", "1.25", "GB", "model", "loaded"]
    assert table[3].split() == ["05_sft", "30.5s", "-", "FAILED:", "cell", "3", "failed"]
    assert table[4].split() == ["total", "42.5s", "1.25", "GB", "(largest", "peak)"]


def tiny_lesson(path: Path, *sources: str) -> Path:
    """A notebook of a title, a parameters cell (cell 1: ``x = 1``) and the given code cells, written to ``path``."""
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A lesson"),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        *(nbformat.v4.new_code_cell(source) for source in sources),
    ]), path)
    return path


def test_a_run_keeps_the_time_and_peak_memory_of_each_cell_and_names_the_slowest(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tiny_lesson(tmp_path / "99_tiny.ipynb", "import time\ntime.sleep(1.5)  # the slow one",
                       "block = bytearray(400_000_000); time.sleep(0.5); del block",
                       "y = x | 2  # a pipe, escaped in the table")
    run = execute_lesson(path, tmp_path / "out")
    assert "Kernel is running over TCP" not in capfd.readouterr().err  # the kernel talks over local sockets
    table = (tmp_path / "out" / "99_tiny.cells.md").read_text().splitlines()
    assert table[2:4] == ["| cell | seconds | share | peak memory | first line |", "|---:|---:|---:|---:|---|"]
    sleep, allocate, pipe = (row.split(" | ") for row in table[5:8])
    assert sleep[0] == "| 2" and 1.4 <= float(sleep[1]) < 3.0 and sleep[4] == "`import time` |", table
    assert run.slowest_cells.split(" · ")[0] in (f"cell 2 {s} s" for s in (1, 2, 3)), run.slowest_cells
    assert float(allocate[3].removesuffix(" GB")) > float(sleep[3].removesuffix(" GB")) + 0.3, table
    assert run.largest_cell.startswith("cell 3 "), run.largest_cell
    assert run.left_behind == []
    assert pipe[4] == "`y = x \\| 2  # a pipe, escaped in the table` |"


def test_cell_times_without_a_memory_timeline_have_no_peak() -> None:
    cell = nbformat.v4.new_code_cell("pass", metadata={"papermill": {"duration": 2.04, "start_time": None}})
    assert cell_times(nbformat.v4.new_notebook(cells=[cell])) == [CellTime(0, 2.0, "pass", None)]


def test_measurements_page_marks_each_budget_overrun_with_the_machine_that_measured_it() -> None:
    page = measurements_page([
        LessonRun("00_setup", 12.0, 1.25, "model | loaded", "out/00.ipynb", slowest_cells="cell 3 9 s",
                  largest_cell="cell 3 1.20 GB"),
        LessonRun("05_sft", 400.4, 4.5, "", "out/05.ipynb", error="cell 3 failed"),
        LessonRun("08_reinforcement_learning", 500.0, None, "rl", "out/08.ipynb"),
        LessonRun("07_dpo", 420.0, 3.0, "dpo", "out/07.ipynb", build_seconds=90.4),
    ], "`make test` (1 thread(s) a lesson, 2 at a time)").splitlines()
    assert page[0] == "# Measurements" and page[2].startswith("Generated by `make test` (1 thread(s) a lesson, 2 at")
    assert "avx512_bf16" in page[4] and f"{os.cpu_count()} cores" in page[4]
    rows = page[page.index("|---|---|---|---|---|---|") + 1:]
    assert rows[0] == "| 00_setup | 12 s | 1.25 GB | cell 3 1.20 GB | cell 3 9 s | model \\| loaded |"
    assert rows[1] == (f"| 05_sft | 400 s (**over** {TIME_BUDGET_S} s) | 4.5 GB (**over** {MEMORY_BUDGET_GB:g} GB) "
                       "|  |  | FAILED: cell 3 failed |")
    assert rows[2].startswith("| 08_reinforcement_learning | 500 s | - |")  # its budget is 10 minutes
    assert rows[3].startswith("| 07_dpo | 330 s + 90 s building cached artefacts | 3 GB |")  # its own work is in budget
    assert rows[4] == "| all lessons | 1332 s | | | | |"


def test_what_a_lesson_leaves_in_its_temp_folder_is_reported_and_removed(tmp_path: Path) -> None:
    path = tiny_lesson(tmp_path / "99_leaky.ipynb",
                       "import tempfile\nwith tempfile.TemporaryDirectory():\n    pass  # cleaned: fine",
                       "forgotten = tempfile.mkdtemp(prefix='forgotten-')\nprint(forgotten)",
                       "import os\nos.makedirs(f'{tempfile.gettempdir()}/torchinductor_me')  # torch's cache")
    before = os.environ.get("TMPDIR")
    run = execute_lesson(path, tmp_path / "out")
    printed = Path(nbformat.read(run.output, as_version=4).cells[3].outputs[0]["text"].strip())
    assert [name.split("-")[0] for name in run.left_behind] == ["forgotten"], run.left_behind
    assert printed.name == run.left_behind[0] and not printed.parent.exists()  # the lesson's own folder, removed
    assert os.environ.get("TMPDIR") == before


def test_lessons_run_side_by_side_each_on_its_own_kernel_sockets_and_the_course_writes_its_pages(
        tmp_path: Path) -> None:
    lessons = [tiny_lesson(tmp_path / f"9{i}_side.ipynb", f"import time\ntime.sleep(1)\nprint({i} * x)")
               for i in range(2)]
    runs = run_course(lessons, tmp_path / "out", {}, jobs=2, html=False)
    assert [run.error for run in runs] == ["", ""]
    printed = [nbformat.read(run.output, as_version=4).cells[2].outputs[0]["text"] for run in runs]
    assert printed == ["0\n", "1\n"]
    assert "| 90_side |" in (tmp_path / "out" / "measurements.md").read_text()
    assert [record["lesson"] for record in json.loads((tmp_path / "out" / "report.json").read_text())] == [
        "90_side", "91_side"]


def test_a_shared_build_inside_a_lesson_is_timed_apart_from_the_lesson_s_own_work(tmp_path: Path) -> None:
    build_and_reuse = (f"import time\nfrom pathlib import Path\nfrom course_lib.core.builds import build_atomically\n"
                       f"target = Path({str(tmp_path / 'cache' / 'artefact')!r})\n"
                       "build = lambda staging: (time.sleep(1.5), (staging / 'weights').write_text('w'))\n"
                       "for _ in range(2):  # built, then reused\n"
                       "    build_atomically(target, build, is_fresh=lambda folder: True)\n"
                       "time.sleep(1.0)  # the lesson's own work")
    run = execute_lesson(tiny_lesson(tmp_path / "99_builds.ipynb", build_and_reuse), tmp_path / "out")
    assert 1.5 <= run.build_seconds < 2.5, run
    assert run.own_seconds == pytest.approx(run.seconds - run.build_seconds, abs=0.1) and run.own_seconds >= 1.0
    assert "COURSE_BUILD_LOG" not in os.environ  # only the kernel logs its builds
