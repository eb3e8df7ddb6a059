"""One call at the top of every notebook: offline, quiet, seeded, sized.

``setup()`` is the first thing a lesson runs after ``import course_lib``. It
silences known import noise, seeds every random generator, picks the number
of CPU threads, detects the device and returns the :class:`Profile` the
lesson reads its knobs from. Whatever the machine cannot do (4-bit
loading without a GPU or without bitsandbytes) is switched off with a message
saying what the lesson will skip, never silently.
"""

import importlib.util
import logging
import os
import platform
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib.core.memory import release_memory_after_every_cell
from course_lib.core.offline import hub_allowed
from course_lib.core.profiles import Profile, get_profile

# Messages that libraries print on import or load and that teach nothing.
_NOISY_WARNINGS = (
    ".*kernels-community.*",
    ".*gradient_checkpointing.*",
    ".*use_reentrant.*",
    ".*torch_dtype.*is deprecated.*",
    ".*Position ids are not supported for parameter efficient tuning.*",
)


def detect_device() -> str:
    """'cuda' when a GPU is visible, 'mps' on Apple silicon, else 'cpu'."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so the same run twice gives the same numbers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def silence_known_noise() -> None:
    """Hide warnings, logs and progress bars that libraries print but lessons don't need."""
    for pattern in _NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    for name in ("bitsandbytes", "torchao", "accelerate", "httpx", "lm_eval"):
        logging.getLogger(name).setLevel(logging.ERROR)


def cpu_model() -> str:
    """The processor's name and whether it has AVX512-BF16 (Linux; the platform's word elsewhere).

    Machines differ in that flag, and with it in bf16 speed: measurements say which machine made them.
    """
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return platform.processor() or platform.machine()
    text = cpuinfo.read_text()
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                platform.machine())
    return f"{name} ({'with' if 'avx512_bf16' in text else 'without'} avx512_bf16)"


def default_profile_name() -> str:
    """COURSE_PROFILE if set, else 'gpu' on a CUDA machine and 'cpu' elsewhere."""
    return os.environ.get("COURSE_PROFILE") or ("gpu" if detect_device() == "cuda" else "cpu")


def default_num_threads() -> int:
    """COURSE_NUM_THREADS if set (the test runner gives each parallel notebook one), else all cores."""
    return int(os.environ.get("COURSE_NUM_THREADS") or os.cpu_count() or 1)


def setup(profile: str | None = None, verbose: bool = True, **overrides: Any) -> Profile:
    """Prepare the process for a lesson and return its profile.

    ``profile`` names a profile ('cpu' or 'gpu'); by default it follows the
    hardware. ``overrides`` change single knobs (notebook parameters land here).
    """
    chosen = get_profile(profile or default_profile_name())
    detected = detect_device()
    base = {"num_threads": default_num_threads()}
    if chosen.device != detected:
        base |= {"device": detected, "dtype": "float32" if detected == "cpu" else chosen.dtype}
        if detected != "cuda" and chosen.load_in_4bit:
            base["load_in_4bit"] = False
            print(f"No CUDA GPU ({detected} here): 4-bit loading (QLoRA) is skipped; models load in {base['dtype']}.")
    result = chosen.with_overrides(**(base | overrides))
    if result.load_in_4bit and importlib.util.find_spec("bitsandbytes") is None:
        result = result.with_overrides(load_in_4bit=False)
        print(f"bitsandbytes is not installed: 4-bit loading (QLoRA) is skipped; models load in {result.dtype}. "
              "Install it with `make setup` (or `pip install bitsandbytes`) to run those steps.")
    silence_known_noise()
    release_memory_after_every_cell()
    torch.set_num_threads(result.num_threads)
    seed_everything(result.seed)
    if verbose:
        hub = "allowed" if hub_allowed() else "offline (set COURSE_ALLOW_HUB=1 to allow)"
        print(
            f"profile={result.name} device={result.device} dtype={result.dtype} "
            f"threads={result.num_threads} model={result.model_name} hub={hub}"
        )
    return result
