"""Offline-by-default behaviour of the Hugging Face libraries.

The course runs where only package registries are reachable. Without these
variables, asking for a hub model retries for about 48 s before failing; with
them, it fails at once. They are read when huggingface_hub is first imported,
so they must be set before any heavy import: importing ``course_lib`` does it.
Set ``COURSE_ALLOW_HUB=1`` on a machine with hub access to use hub models.
"""

import os

OFFLINE_VARIABLES = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
}
QUIET_VARIABLES = {
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # OpenMP threads that spin while waiting stall torch badly when other processes share the
    # cores (two notebooks in the test suite, a laptop's browser): 43 s instead of 1 s measured.
    "OMP_WAIT_POLICY": "PASSIVE",
}


def hub_allowed() -> bool:
    """True when the user opted in to the Hugging Face Hub with COURSE_ALLOW_HUB=1."""
    return os.environ.get("COURSE_ALLOW_HUB", "0") == "1"


def apply_offline_defaults() -> None:
    """Set the offline, quiet and threading variables unless the user already chose a value."""
    for name, value in QUIET_VARIABLES.items():
        os.environ.setdefault(name, value)
    if not hub_allowed():
        for name, value in OFFLINE_VARIABLES.items():
            os.environ.setdefault(name, value)
