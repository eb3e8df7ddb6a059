"""The course website: MkDocs with the Material theme and mkdocs-jupyter, built from executed lessons.

``python -m course_lib.lessons.site`` (``make site``) takes the lessons a run
executed (``make test`` leaves them, with their times and headlines, in
build/test-notebooks; ``make course`` in build/course), writes an MkDocs
project under build/site-src (the index page with the course map, the curriculum
and reading list from docs/, the run's measurements page when it wrote one, one page per
lesson with its outputs and pictures, both editions of every lesson for
download) and builds the static site into build/site: navigation and search
come from Material, the lesson pages from mkdocs-jupyter. The pages load
nothing from the network except what a reader clicks (Colab, Kaggle).
"""

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat
import yaml
from mkdocs.commands.build import build
from mkdocs.config import load_config

from course_lib.core.paths import REPO_ROOT, build_dir
from course_lib.lessons.editions import STUDENT_DIR
from course_lib.lessons.notebooks import MEASUREMENTS_PAGE, NOTEBOOKS_DIR, LessonRun, open_urls, repository_url

LESSON_PATTERN = "[0-9][0-9]_*.ipynb"
SITE_NAME = "Adapting Large Language Models"
CURRICULUM = REPO_ROOT / "docs" / "curriculum.md"


def lesson_runs(executed_dir: Path) -> dict[str, LessonRun]:
    """The recorded runs in a folder of executed lessons, by lesson: the suite's <lesson>.json or the runner's report.json."""
    records: list[dict[str, Any]] = []
    for path in sorted(executed_dir.glob("*.json")):
        loaded = json.loads(path.read_text())
        records += loaded if isinstance(loaded, list) else [loaded]
    fields = set(LessonRun.__dataclass_fields__)
    return {record["lesson"]: LessonRun(**{k: v for k, v in record.items() if k in fields}) for record in records}


def lesson_title(notebook: Any) -> str:
    """A lesson's title: the first line of its first cell, without the Markdown '#'."""
    return notebook.cells[0].source.splitlines()[0].lstrip("# ").strip()


def _links(urls: dict[str, str]) -> str:
    return " · ".join(f"[{name}]({url})" for name, url in urls.items())


def course_map(lessons: list[Path], runs: dict[str, LessonRun]) -> str:
    """The index page in Markdown: what the course is and a table of its lessons with time, headline and links."""
    rows = []
    for path in lessons:
        title = lesson_title(nbformat.read(path, as_version=4))
        run = runs.get(path.stem)
        seconds = f"{run.seconds:.0f} s" if run else "not timed"
        headline = (run.headline if run else "").replace("|", "\\|")
        opens = (f"instructor: {_links(open_urls(f'notebooks/{path.name}'))}<br>"
                 f"student: {_links(open_urls(f'student/{path.name}'))}")
        downloads = (f"[instructor](downloads/instructor/{path.name}){{: download }} · "
                     f"[student](downloads/student/{path.name}){{: download }}")
        rows.append(f"| [{title}](lessons/{path.stem}/) | {seconds} | {headline} | {opens} | {downloads} |")
    return "\n".join([
        f"# {SITE_NAME}",
        "",
        "An open course on how a large language model works and how to adapt it, with code that runs offline "
        "on a laptop CPU in minutes, on a real pretrained model (SmolLM2-135M-Instruct). Every page below was "
        f"executed end to end; the source is at <{repository_url()}>.",
        "",
        "Each lesson comes in two editions from one source: the **instructor** edition with the solutions, and "
        "the **student** edition, where every exercise's solution is replaced by `raise NotImplementedError()` "
        "for you to write.",
        "",
        "## Course map",
        "",
        "Time: the lesson's wall time in the run that produced these pages. Headline: what the lesson measured.",
        "",
        "| lesson | time | headline | open in | download |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ])


def site_config(lessons: list[Path], docs_dir: Path, site_dir: Path, measured: bool = False) -> dict[str, Any]:
    """The MkDocs configuration: Material without web fonts, search, and mkdocs-jupyter for the lesson pages;
    ``measured`` adds the run's measurements page to the navigation."""
    return {
        "site_name": SITE_NAME,
        "docs_dir": str(docs_dir),
        "site_dir": str(site_dir),
        "theme": {"name": "material", "font": False,
                  "features": ["navigation.sections", "navigation.top", "search.highlight"]},
        "plugins": ["search", {"mkdocs-jupyter": {"include": ["lessons/*.ipynb"], "cache": False,
                                                  "include_requirejs": False}}],
        "markdown_extensions": ["tables", "attr_list"],
        "nav": [{"Course map": "index.md"}, {"Curriculum and reading": CURRICULUM.name},
                *([{"Measurements": MEASUREMENTS_PAGE}] if measured else []),
                {"Lessons": [{lesson_title(nbformat.read(p, as_version=4)): f"lessons/{p.name}"} for p in lessons]}],
    }


def build_site(executed_dir: Path, site_dir: Path, work_dir: Path) -> list[Path]:
    """Write the MkDocs project for the lessons executed in ``executed_dir`` into ``work_dir`` and build it
    into ``site_dir``; returns the lessons it published. Both editions of each lesson go along as downloads."""
    lessons = sorted(executed_dir.glob(LESSON_PATTERN))
    if not lessons:
        raise FileNotFoundError(f"no executed lessons in {executed_dir}: run `make test` (or `make course` and "
                                "pass --executed build/course) first")
    shutil.rmtree(work_dir, ignore_errors=True)
    docs = work_dir / "docs"
    for folder, source in (("lessons", executed_dir), ("downloads/instructor", NOTEBOOKS_DIR),
                           ("downloads/student", STUDENT_DIR)):
        (docs / folder).mkdir(parents=True)
        for path in lessons:
            shutil.copyfile(source / path.name, docs / folder / path.name)
    (docs / "index.md").write_text(course_map(lessons, lesson_runs(executed_dir)), encoding="utf-8")
    shutil.copyfile(CURRICULUM, docs / CURRICULUM.name)
    measured = (executed_dir / MEASUREMENTS_PAGE).exists()
    if measured:
        shutil.copyfile(executed_dir / MEASUREMENTS_PAGE, docs / MEASUREMENTS_PAGE)
    config_file = work_dir / "mkdocs.yml"
    config_file.write_text(yaml.safe_dump(site_config(lessons, docs, site_dir, measured), sort_keys=False),
                           encoding="utf-8")
    build(load_config(str(config_file), strict=True))
    return lessons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executed", type=Path, default=build_dir() / "test-notebooks",
                        help="folder of executed lessons and their run records (default: what `make test` left)")
    parser.add_argument("--out", type=Path, default=build_dir() / "site", help="where the static site goes")
    args = parser.parse_args(argv)
    lessons = build_site(args.executed.resolve(), args.out.resolve(), build_dir() / "site-src")
    print(f"built {len(lessons)} lesson page(s) into {args.out}; open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
