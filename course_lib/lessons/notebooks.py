"""Running, checking and publishing the lesson notebooks.

``python -m course_lib.lessons.notebooks run`` executes every lesson with papermill
into a build folder (executed notebook + HTML), times each one, measures its
peak memory and prints a table with the lesson's headline result. The test suite executes lessons with
the same :func:`execute_lesson`. ``check`` verifies that committed notebooks
are clean and carry the current badges and Colab/Kaggle set-up cell; ``sync``
rewrites those two from this module, the single place they are defined.
"""

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import multiprocessing
import os
import sys
import tempfile
import time
import unittest.mock
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import CaselessStrEnum, default

from course_lib.assets.packages import ASSET_PACKAGES
from course_lib.core.builds import BUILD_LOG_VARIABLE, build_seconds
from course_lib.core.environment import cpu_model, default_profile_name
from course_lib.core.memory import PeakMemory
from course_lib.core.paths import REPO_ROOT, build_dir
from course_lib.core.report import HEADLINE_MIMETYPE

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
COLAB_TAG = "colab-setup"
PARAMETERS_TAG = "parameters"
# A lesson gives a model's memory back one way (course_lib.core.memory.held / free_models, which empty its tensors
# whoever still refers to it), not by collecting garbage and hoping no trainer or wrapper still holds the weights.
HAND_FREEING = ("gc.collect", "release_freed_memory")
# A lesson must run on a laptop with 8 GB of memory: on the cpu profile it stays under this peak.
MEMORY_BUDGET_GB = 4.0


# Lessons that build the cached artefacts later lessons reuse (lesson 05's fine-tuned models, lesson 07's reward
# model). The test suite starts them first, so the lessons after them reuse the artefacts instead of building them,
# and their times and memory measure the lesson.
ARTEFACT_BUILDERS = ("05_supervised_fine_tuning", "07_preference_tuning")
# Lessons that read what the other lessons built and recorded (the capstone): the suite starts them right after the
# artefact builders.
COURSE_READERS = ("12_capstone",)


# A lesson's wall time inside the suite on the cpu profile (one thread, two lessons at a time): minutes, so an
# instructor can live-code it; reinforcement learning, which samples before it learns, gets longer.
TIME_BUDGET_S = 360
TIME_BUDGETS_S = {"08_reinforcement_learning": 600}
SLOWEST_CELLS_SHOWN = 3
# Caches that libraries keep in the temp folder across processes on purpose (torch's compile cache, created empty
# when a trainer imports torch._inductor): not something a lesson forgot to remove.
LIBRARY_TEMP_CACHES = ("torchinductor_",)
# The page of measured times and memory that a run writes beside its executed lessons (the README links to it).
MEASUREMENTS_PAGE = "measurements.md"


def time_budget_s(lesson: str) -> float:
    """The wall time a lesson's own work may take inside the suite on the cpu profile."""
    return TIME_BUDGETS_S.get(lesson, TIME_BUDGET_S)


def lesson_paths() -> list[Path]:
    """The lesson notebooks, in course order (``00_…``, ``01_…``)."""
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def repository_url() -> str:
    """The course repository, from the one place it is set: pyproject.toml's [project.urls]."""
    for entry in importlib.metadata.metadata("course-lib").get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip() == "Repository":
            return url.strip()
    raise RuntimeError("pyproject.toml has no [project.urls] Repository entry; add it and rerun `make setup`.")


def open_urls(path: str) -> dict[str, str]:
    """Where a notebook of the repository (e.g. 'student/00_setup_and_tour.ipynb') opens: Colab and Kaggle."""
    repository = repository_url().removeprefix("https://github.com/")
    return {"Colab": f"https://colab.research.google.com/github/{repository}/blob/main/{path}",
            "Kaggle": f"https://kaggle.com/kernels/welcome?src=https://github.com/{repository}/blob/main/{path}"}


def _badges(path: str) -> str:
    """The 'Open in Colab' and 'Open in Kaggle' badges of one notebook of the repository."""
    urls = open_urls(path)
    return (
        f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({urls['Colab']}) "
        f"[![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]({urls['Kaggle']})"
    )


def badge_markdown(notebook: str) -> str:
    """The badges of a lesson, one line: its instructor edition (notebooks/) and its student edition (student/)."""
    return (f"Instructor edition, with solutions: {_badges(f'notebooks/{notebook}')} · "
            f"Student edition, exercises to do: {_badges(f'student/{notebook}')}")


def colab_setup_source() -> str:
    """The first code cell of every lesson: on Colab/Kaggle only, install the course, keep torch."""
    assets = " ".join(f"{p.distribution}=={p.version}" for p in ASSET_PACKAGES.values())
    return "\n".join([
        "# On Colab or Kaggle only: fetch the course and install it, keeping the preinstalled torch.",
        "# Locally (after `make setup`) this cell does nothing.",
        "import os, sys",
        'ON_COLAB, ON_KAGGLE = "google.colab" in sys.modules, "KAGGLE_KERNEL_RUN_TYPE" in os.environ',
        "if ON_COLAB or ON_KAGGLE:",
        '    COURSE_DIR = "/content/llm-course" if ON_COLAB else "/kaggle/working/llm-course"',
        f"    !git clone --depth 1 {repository_url()} {{COURSE_DIR}}",
        "    %pip install -q -e {COURSE_DIR}",
        f"    %pip install -q --no-deps {assets}",
        "    sys.path.insert(0, COURSE_DIR)",
        '    os.chdir(f"{COURSE_DIR}/notebooks")',
    ])


def _tagged(notebook: Any, tag: str) -> list[Any]:
    return [cell for cell in notebook.cells if tag in cell.get("metadata", {}).get("tags", [])]


def problems(path: Path) -> list[str]:
    """Why a committed notebook is not clean or not in sync; empty when it is fine."""
    notebook = nbformat.read(path, as_version=4)
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            found.append(f"cell {index} has outputs or an execution count")
        if {"execution", "papermill"} & set(cell.metadata):
            found.append(f"cell {index} has execution metadata")
    for key in ("widgets", "papermill"):
        if key in notebook.metadata:
            found.append(f"notebook metadata has '{key}'")
    if notebook.cells[0].cell_type != "markdown" or badge_markdown(path.name) not in notebook.cells[0].source:
        found.append("first cell lacks the current Colab/Kaggle badges (run `make sync`)")
    colab = _tagged(notebook, COLAB_TAG)
    if len(colab) != 1 or colab[0].source != colab_setup_source():
        found.append(f"needs exactly one '{COLAB_TAG}' cell with the current source (run `make sync`)")
    if len(_tagged(notebook, PARAMETERS_TAG)) != 1:
        found.append(f"needs exactly one cell tagged '{PARAMETERS_TAG}' (papermill)")
    for index, cell in enumerate(notebook.cells):
        hand_freeing = [call for call in HAND_FREEING if cell.cell_type == "code" and f"{call}(" in cell.source]
        if hand_freeing:
            found.append(f"cell {index} frees memory by hand ({', '.join(hand_freeing)}): hold the model with "
                         "course_lib.core.memory.held or give it back with free_models")
    return found


def sync(path: Path) -> None:
    """Clean a notebook and rewrite its badges and set-up cell from this module."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    for key in ("widgets", "papermill"):
        notebook.metadata.pop(key, None)
    title = notebook.cells[0]
    lines = [line for line in title.source.splitlines() if "[![Open in Colab]" not in line]
    title.source = "\n".join(lines[:1] + ["", badge_markdown(path.name)] + lines[1:]).replace("\n\n\n", "\n\n")
    for cell in _tagged(notebook, COLAB_TAG):
        cell.source = colab_setup_source()
    nbformat.write(notebook, path)


class LocalSocketKernelManager(KernelManager):
    """A kernel manager that talks to its kernel over local (IPC) sockets instead of unencrypted TCP ports:
    nothing listens on the network, and the kernel prints no transport warning into every run's log."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc" if os.name == "posix" else "tcp", config=True)

    @default("ip")
    def _ip_default(self) -> str:
        """A socket path of this kernel's own: jupyter_client's default ('kernel-ipc' in the working directory)
        is shared by kernels started side by side, and two lessons run at once would talk over each other."""
        if self.transport == "ipc":
            os.makedirs(jupyter_runtime_dir(), mode=0o700, exist_ok=True)
            return os.path.join(jupyter_runtime_dir(), f"kernel-{uuid.uuid4().hex[:12]}-ipc")
        return super()._ip_default()


@dataclass
class LessonRun:
    """One executed lesson: where it went, how long it took, what it found."""

    lesson: str
    seconds: float
    peak_gb: float | None  # None when the run failed before it was measured
    headline: str
    output: str
    error: str = ""
    slowest_cells: str = ""  # e.g. "cell 12 81 s · cell 30 40 s": where the time went, from the per-cell table
    largest_cell: str = ""  # e.g. "cell 40 4.10 GB": where the memory peaked
    left_behind: list[str] = field(default_factory=list)  # what the lesson left in its temp folder (should be nothing)
    build_seconds: float = 0.0  # of ``seconds``, spent building shared artefacts or waiting for another's build

    @property
    def own_seconds(self) -> float:
        """The lesson's own work: its wall time less the shared artefacts' builds (what the time budget holds)."""
        return round(self.seconds - self.build_seconds, 1)


@dataclass(frozen=True)
class CellTime:
    """One code cell's execution time, as papermill recorded it, and the peak memory sampled while it ran."""

    index: int
    seconds: float
    first_line: str
    peak_gb: float | None = None  # None without a memory timeline, or when no sample fell inside the cell


def _peak_between(timeline: list[tuple[float, int]], start: str | None, end: str | None) -> float | None:
    if not (timeline and start and end):
        return None
    began, ended = datetime.datetime.fromisoformat(start).timestamp(), datetime.datetime.fromisoformat(end).timestamp()
    inside = [rss for moment, rss in timeline if began <= moment <= ended]
    return round(max(inside) / 1e9, 2) if inside else None


def cell_times(notebook: Any, timeline: list[tuple[float, int]] | None = None) -> list[CellTime]:
    """The code cells of an executed notebook with their times (0 s for a cell not run), in notebook order; with
    the run's memory ``timeline`` (:class:`PeakMemory`'s (Unix time, bytes) samples), each cell's peak too."""
    times = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            record = cell.metadata.get("papermill", {})
            first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
            peak = _peak_between(timeline or [], record.get("start_time"), record.get("end_time"))
            times.append(CellTime(index, round(float(record.get("duration") or 0.0), 1), first[:80], peak))
    return times


def cell_table(lesson: str, times: list[CellTime]) -> str:
    """Where a lesson's time went, cell by cell, as a Markdown table (the runner keeps it beside the notebook)."""
    total = sum(t.seconds for t in times) or 1.0
    lines = [f"# {lesson}: time and peak memory per cell", "",
             "| cell | seconds | share | peak memory | first line |", "|---:|---:|---:|---:|---|"]
    for t in times:
        first_line = t.first_line.replace("|", "\\|")
        memory = "-" if t.peak_gb is None else f"{t.peak_gb:.2f} GB"
        lines.append(f"| {t.index} | {t.seconds:.1f} | {t.seconds / total:.0%} | {memory} | `{first_line}` |")
    return "\n".join(lines) + "\n"


def slowest_cells(times: list[CellTime], shown: int = SLOWEST_CELLS_SHOWN) -> str:
    """The few cells that took the longest, slowest first, in one line."""
    ranked = sorted(times, key=lambda t: t.seconds, reverse=True)[:shown]
    return " · ".join(f"cell {t.index} {t.seconds:.0f} s" for t in ranked)


def largest_cell(times: list[CellTime]) -> str:
    """The cell during which the lesson's memory peaked, e.g. 'cell 40 4.10 GB' ('' without memory samples)."""
    measured = [t for t in times if t.peak_gb is not None]
    if not measured:
        return ""
    top = max(measured, key=lambda t: t.peak_gb or 0.0)
    return f"cell {top.index} {top.peak_gb:.2f} GB"


def headline_of(notebook: Any) -> str:
    """The headline a lesson reported with ``course_lib.core.report.headline`` ('' if none)."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if HEADLINE_MIMETYPE in output.get("data", {}):
                return output["data"][HEADLINE_MIMETYPE]["headline"]
    return ""


@contextlib.contextmanager
def own_temp_folder(prefix: str) -> Iterator[Path]:
    """A fresh folder that processes started inside the block (the kernel and its children) take as their system
    temp folder (TMPDIR, TEMP, TMP); removed afterwards, so a caller can first list what they left in it."""
    with (tempfile.TemporaryDirectory(prefix=prefix) as folder,
          unittest.mock.patch.dict(os.environ, dict.fromkeys(("TMPDIR", "TEMP", "TMP"), folder))):
        yield Path(folder)


def execute_lesson(
    path: Path, output_dir: Path, parameters: dict[str, Any] | None = None,
    num_threads: int | None = None, html: bool = False,
) -> LessonRun:
    """Execute one lesson on a fresh kernel with papermill, timing it and measuring its peak memory; raises if any
    cell fails. The kernel gets a temp folder of its own: what the lesson leaves in it is reported, then removed.
    The kernel logs the cache builds it waits for (:mod:`course_lib.core.builds`) next to the executed notebook."""
    import papermill

    output_dir.mkdir(parents=True, exist_ok=True)
    build_log = output_dir / f"{path.stem}.builds.jsonl"
    build_log.unlink(missing_ok=True)
    if num_threads is not None:
        os.environ["COURSE_NUM_THREADS"] = str(num_threads)
    output = output_dir / path.name
    started = time.perf_counter()
    with (own_temp_folder(f"{path.stem}-tmp-") as temp,
          unittest.mock.patch.dict(os.environ, {BUILD_LOG_VARIABLE: str(build_log)}),
          PeakMemory(include_self=False, interval_s=0.1, keep_timeline=True) as memory):  # the kernel and children
        papermill.execute_notebook(
            str(path), str(output), parameters=parameters or {}, cwd=str(path.parent),
            kernel_name="python3", progress_bar=False, log_output=False,
            kernel_manager_class=LocalSocketKernelManager,
        )
        left_behind = sorted(str(p.relative_to(temp)) for p in temp.rglob("*")
                             if not p.relative_to(temp).parts[0].startswith(LIBRARY_TEMP_CACHES))
    seconds = time.perf_counter() - started
    executed = nbformat.read(output, as_version=4)
    times = cell_times(executed, memory.timeline)
    output.with_suffix(".cells.md").write_text(cell_table(path.stem, times), encoding="utf-8")
    if html:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(executed)
        output.with_suffix(".html").write_text(body, encoding="utf-8")
    return LessonRun(path.stem, round(seconds, 1), memory.peak_gb, headline_of(executed), str(output),
                     slowest_cells=slowest_cells(times), largest_cell=largest_cell(times), left_behind=left_behind,
                     build_seconds=round(build_seconds(build_log), 1))


def _run_safely(path: Path, output_dir: Path, parameters: dict[str, Any], num_threads: int | None, html: bool) -> LessonRun:
    started = time.perf_counter()
    try:
        return execute_lesson(path, output_dir, parameters, num_threads, html)
    except Exception as error:  # a failed lesson is reported in the table, the others still run
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return LessonRun(path.stem, round(time.perf_counter() - started, 1), None, "", str(output_dir / path.name),
                         first_line)


def format_table(runs: list[LessonRun]) -> str:
    """A plain-text table: lesson, wall time, peak memory ('-' where not measured), headline (or the error)."""
    width = max([len(run.lesson) for run in runs] + [6])
    lines = [f"{'lesson':<{width}}  {'time':>7}  {'peak mem':>8}  headline", "-" * (width + 50)]
    for run in runs:
        result = f"FAILED: {run.error}" if run.error else run.headline
        memory = "-" if run.peak_gb is None else f"{run.peak_gb:.2f} GB"
        lines.append(f"{run.lesson:<{width}}  {run.seconds:>6.1f}s  {memory:>8}  {result}")
    peaks = [run.peak_gb for run in runs if run.peak_gb is not None]
    largest = f"{max(peaks):.2f} GB" if peaks else "-"
    lines.append(f"{'total':<{width}}  {sum(run.seconds for run in runs):>6.1f}s  {largest:>8}  (largest peak)")
    return "\n".join(lines)


def _against(value: float | None, budget: float, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:g} {unit}" + (f" (**over** {budget:g} {unit})" if value > budget else "")


def measurements_page(runs: list[LessonRun], how: str) -> str:
    """The generated Markdown page of each lesson's wall time and peak memory against its budget, where the time
    went, and the machine and settings that measured them: the numbers the README points to, never typed by hand."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Measurements", "",
        f"Generated by {how} on {stamp}; rerun it to refresh this page, do not edit it.", "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, torch {importlib.metadata.version('torch')}, "
        f"profile {default_profile_name()} (fp32 on a CPU). Budgets: {TIME_BUDGET_S / 60:g} minutes a lesson "
        f"({', '.join(f'{k}: {v / 60:g}' for k, v in TIME_BUDGETS_S.items())}), {MEMORY_BUDGET_GB:g} GB peak "
        "(the kernel and what it starts); **over** marks a lesson above them. The suite fails a lesson above its "
        "memory budget and does not yet fail one for its time. Each lesson's per-cell table lies beside its executed "
        "notebook (`<lesson>.cells.md`). A lesson's time is its own work: the time it spent "
        "building a cached artefact (the shared fine-tuned model, the reward model, lesson 05's sweep models, lesson "
        "12's pipeline stages: built once per machine, then reused) or waiting for another lesson's build is shown "
        "beside it, not counted.", "",
        "| lesson | time | peak memory | peak during | slowest cells | headline |", "|---|---|---|---|---|---|",
    ]
    for run in runs:
        result = (f"FAILED: {run.error}" if run.error else run.headline).replace("|", "\\|")
        builds = f" + {run.build_seconds:.0f} s building cached artefacts" if run.build_seconds >= 1 else ""
        lines.append(f"| {run.lesson} | {_against(round(run.own_seconds), time_budget_s(run.lesson), 's')}{builds} | "
                     f"{_against(run.peak_gb, MEMORY_BUDGET_GB, 'GB')} | {run.largest_cell} | {run.slowest_cells} | {result} |")
    lines.append(f"| all lessons | {sum(run.seconds for run in runs):.0f} s | | | | |")
    return "\n".join(lines) + "\n"


def run_course(
    lessons: list[Path], output_dir: Path, parameters: dict[str, Any], jobs: int, html: bool
) -> list[LessonRun]:
    """Execute lessons (``jobs`` at a time, sharing the cores) and write report.json."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # spawned, not forked: a fork of a process that already runs threads (a kernel client's, a memory sampler's) can
    # inherit a held lock and hang
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run_safely, path, output_dir, parameters, threads, html) for path in lessons]
        runs = [future.result() for future in futures]
    (output_dir / "report.json").write_text(json.dumps([asdict(run) for run in runs], indent=2))
    (output_dir / MEASUREMENTS_PAGE).write_text(
        measurements_page(runs, f"`make course` ({threads} thread(s) a lesson, {jobs} at a time)"), encoding="utf-8")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute lessons into a build folder and print a table")
    run.add_argument("lessons", nargs="*", help="lesson files (default: all)")
    run.add_argument("--out", type=Path, default=build_dir() / "course")
    run.add_argument("--profile", help="profile for every lesson: cpu or gpu (default: follow the hardware)")
    run.add_argument("--jobs", type=int, default=1, help="lessons executed at a time")
    run.add_argument("--no-html", action="store_true", help="skip the HTML export")
    commands.add_parser("check", help="fail if a committed notebook is dirty or out of sync")
    commands.add_parser("sync", help="clean notebooks and rewrite badges and the set-up cell")
    args = parser.parse_args(argv)

    if args.command == "sync":
        for path in lesson_paths():
            sync(path)
            print(f"synced {path.relative_to(REPO_ROOT)}")
        return 0
    if args.command == "check":
        found = {path: problems(path) for path in lesson_paths()}
        for path, issues in found.items():
            for issue in issues:
                print(f"{path.relative_to(REPO_ROOT)}: {issue}")
        return 1 if any(found.values()) else 0
    lessons = [Path(p).resolve() for p in args.lessons] or lesson_paths()
    parameters = {"PROFILE": args.profile} if args.profile else {}
    started = time.perf_counter()
    runs = run_course(lessons, args.out, parameters, args.jobs, html=not args.no_html)
    print(format_table(runs))
    print(f"wall time {time.perf_counter() - started:.1f}s; executed notebooks and HTML in {args.out}")
    return 1 if any(run.error for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
