"""Building cache folders safely: under a lock, atomically, only when needed.

Both the converted models and the artefacts lessons share go through
:func:`build_atomically`, so an interrupted build never leaves a half-written
folder that a later run would mistake for a good one, and two notebooks
running at once never build the same thing twice.
"""

import shutil
import tempfile
from pathlib import Path
from typing import Callable

from filelock import FileLock


def build_atomically(target: Path, build: Callable[[Path], None], is_fresh: Callable[[Path], bool]) -> bool:
    """Make ``target`` fresh: unless ``is_fresh(target)``, run ``build(staging)`` and move it into place.

    Returns True when it built, False when the existing folder was reused.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists() and is_fresh(target):
            return False
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
            staging = Path(tmp) / target.name
            staging.mkdir()
            build(staging)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
    return True
