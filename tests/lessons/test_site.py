"""The course website, built from a small fixture of executed lessons and checked in headless Chromium.

The fixture (tests/lessons/site_fixture/) holds two tiny executed lessons named like lessons 00 and 01, each
with a picture and a headline, and their run records, so the site builds in seconds; the downloads are the
repository's real instructor and student editions. The browser test serves the site on 127.0.0.1, opens every
page reachable from the index, and fails on a console error, a broken internal link or a picture that did not
load; it keeps a screenshot of every page under build/site-test/. The network is closed: requests to other
hosts (the Colab badge images) are answered with an empty response and listed, never fetched.
"""

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import nbformat
import pytest
from playwright.sync_api import sync_playwright

from course_lib.core.paths import build_dir
from course_lib.lessons.site import build_site, course_map, lesson_runs, lesson_title

FIXTURE = Path(__file__).parent / "site_fixture"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = build_dir() / "site-test"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("site")
    build_site(FIXTURE, work / "site", work / "src")
    return work / "site"


def test_runs_are_read_from_the_suite_records_and_the_runner_report(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    (tmp_path / "report.json").write_text('[{"lesson": "02_x", "seconds": 3.0, "peak_gb": 0.5, "headline": "h", "output": "o"}]')
    runs = lesson_runs(tmp_path)
    assert set(runs) == {"00_setup_and_tour", "01_transformer_anatomy", "02_x"} and runs["02_x"].seconds == 3.0


def test_course_map_lists_each_lesson_with_time_headline_and_links() -> None:
    lessons = sorted(FIXTURE.glob("*.ipynb"))
    runs = lesson_runs(FIXTURE)
    page = course_map(lessons, runs)
    for path in lessons:
        run = runs[path.stem]
        assert f"| [{lesson_title(nbformat.read(path, as_version=4))}](lessons/{path.stem}/) | {run.seconds:.0f} s |" in page
        assert run.headline in page
        for edition in ("notebooks", "student"):
            assert f"colab.research.google.com/github/sakura-llm-course/adapting-llms/blob/main/{edition}/{path.name}" in page
        assert f"(downloads/student/{path.name})" in page and f"(downloads/instructor/{path.name})" in page


def test_site_has_a_page_per_lesson_search_and_both_editions_to_download(site: Path) -> None:
    for path in FIXTURE.glob("*.ipynb"):
        assert (site / "lessons" / path.stem / "index.html").exists()
        assert nbformat.read(site / "downloads" / "student" / path.name, as_version=4).cells
        assert nbformat.read(site / "downloads" / "instructor" / path.name, as_version=4).cells
    assert (site / "search" / "search_index.json").exists()
    curriculum = (site / "curriculum" / "index.html").read_text(encoding="utf-8")
    assert "Reading" in curriculum and "2203.15556" in curriculum, "the curriculum page carries the reading list"
    measurements = (site / "measurements" / "index.html").read_text(encoding="utf-8")
    assert "00_setup_and_tour" in measurements and "avx512_bf16" in measurements, "the run's measurements page"


def test_a_folder_without_executed_lessons_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run `make test`"):
        build_site(tmp_path, tmp_path / "site", tmp_path / "src")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests are checked in the browser, not logged."""


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _image_outputs(path: Path) -> int:
    notebook = nbformat.read(path, as_version=4)
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


def test_every_page_opens_in_chromium_without_errors_broken_links_or_missing_pictures(served: str) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it with `apt-get install -y chromium`")
        pytest.skip(f"{CHROMIUM} is not installed (Debian: apt-get install -y chromium)")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    problems: list[str] = []
    outside: set[str] = set()
    visited: dict[str, int] = {}
    queue, checked_links = [served], set()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def answer_outside(route) -> None:
            outside.add(route.request.url)
            route.fulfill(status=204, body="")

        context.route(lambda url: not url.startswith(served), answer_outside)
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and problems.append(f"{page.url}: console: {message.text}"))
        page.on("pageerror", lambda error: problems.append(f"{page.url}: script error: {error}"))
        page.on("response", lambda response: response.url.startswith(served) and response.status >= 400
                and problems.append(f"{page.url}: {response.status} for {response.url}"))
        while queue:
            url = queue.pop(0)
            if url in visited:
                continue
            page.goto(url, wait_until="networkidle")
            relative = url.removeprefix(served).strip("/") or "index"
            page.screenshot(path=str(SCREENSHOTS / f"{relative.replace('/', '_')}.png"), full_page=True)
            visited[url] = page.evaluate(
                "() => [...document.querySelectorAll('.jupyter-wrapper img')]"
                ".filter(img => img.complete && img.naturalWidth > 0).length")
            for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
                target = urldefrag(urljoin(url, href)).url
                if not target.startswith(served) or target in checked_links:
                    continue
                checked_links.add(target)
                if target.endswith("/"):
                    queue.append(target)
                elif (status := context.request.get(target).status) != 200:
                    problems.append(f"{url}: broken link {target} ({status})")
        page.goto(served, wait_until="networkidle")
        page.locator("input.md-search__input").click()
        page.keyboard.type("tour")  # typed key by key: Material's search listens to the keyboard
        page.wait_for_selector(".md-search-result__item", timeout=10_000)
        found = page.locator(".md-search-result__meta").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "search.png"))
        browser.close()
    assert not problems, "\n".join(problems)
    assert "matching document" in found, found
    for path in FIXTURE.glob("*.ipynb"):
        url = f"{served}lessons/{path.stem}/"
        assert url in visited, f"the index does not lead to {url}"
        assert visited[url] == _image_outputs(path) > 0, f"{url}: {visited[url]} of {_image_outputs(path)} pictures shown"
    assert all(not url.startswith("http://127.0.0.1") for url in outside)
