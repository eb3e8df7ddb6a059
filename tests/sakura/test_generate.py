"""The data generator writes exactly the committed files, one builder per data set."""

from pathlib import Path

from course_lib.core.paths import data_dir
from course_lib.sakura.datasets import DATASETS
from course_lib.sakura.generate import BUILDERS, write_all


def test_committed_data_is_exactly_what_the_generator_writes(tmp_path: Path) -> None:
    for path in write_all(tmp_path):
        committed = data_dir() / path.name
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: run `make data`"


def test_every_data_set_has_exactly_one_builder() -> None:
    assert list(BUILDERS) == list(DATASETS)
