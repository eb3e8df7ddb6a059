"""Where things live: the repository's data, the build folder and the model cache."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Committed data sets: COURSE_DATA_DIR if set, else the repository's data/."""
    return Path(os.environ.get("COURSE_DATA_DIR") or REPO_ROOT / "data")


def cache_dir() -> Path:
    """Converted models and built artefacts: COURSE_CACHE_DIR if set, else ~/.cache/llm-course."""
    return Path(os.environ.get("COURSE_CACHE_DIR") or Path.home() / ".cache" / "llm-course")


def build_dir() -> Path:
    """Executed notebooks, HTML and timing reports: COURSE_BUILD_DIR if set, else build/."""
    return Path(os.environ.get("COURSE_BUILD_DIR") or REPO_ROOT / "build")
