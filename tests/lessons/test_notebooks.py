"""The lesson runner's measurements: peak memory of the lesson's processes, and the table that reports it."""

import subprocess
import sys

from course_lib.lessons.notebooks import LessonRun, format_table

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
