"""Peak memory of a piece of work: the resident memory of a process (and its children), sampled while it runs.

PyTorch on a CPU has no ``max_memory_allocated``; the operating system's view
(resident set size) is what decides whether a laptop swaps, so that is what
the course reports, sampled every few milliseconds by a background thread.
"""

import ctypes
import gc
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil
import torch


# How often a sampler lists the process's children again. Listing them scans every process on the machine (a few
# milliseconds); reading the listed ones' sizes costs microseconds. A child that lives longer than this is seen.
CHILDREN_RELIST_S = 0.5


def descendants(process: psutil.Process) -> list[psutil.Process]:
    """A process's children, recursively; none when the process itself is gone (nothing left to measure)."""
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def resident_bytes(process: psutil.Process, include_self: bool = True, include_children: bool = True,
                   children: list[psutil.Process] | None = None) -> int:
    """Resident memory of a process and/or its children, recursively (processes that vanish count 0).

    ``children`` are the process's descendants when the caller has listed them already (a sampler lists them
    every :data:`CHILDREN_RELIST_S`); otherwise they are listed now.

    A child with exactly its parent's virtual size is still its parent's address space: it is between fork and
    exec (``subprocess`` starting ``git``, say), and its resident size is the parent's pages, so counting it would
    report the parent twice. It counts 0; once it runs its own program it counts like any other child. (Its
    resident size is no test: the parent's other threads change it between the two reads.)
    """
    if not include_children:
        children = []
    elif children is None:
        children = descendants(process)
    processes = [process, *children]
    sizes: dict[int, tuple[int, int, int]] = {}  # pid -> (resident, virtual, parent pid)
    for each in processes:
        try:
            info = each.memory_info()
            sizes[each.pid] = (info.rss, info.vms, each.ppid())
        except psutil.Error:
            continue
    total = 0
    for pid, (rss, vms, parent_pid) in sizes.items():
        if pid == process.pid:
            total += rss if include_self else 0
        elif parent_pid not in sizes or sizes[parent_pid][1] != vms:
            total += rss
    return total


@dataclass
class PeakMemory:
    """A context manager that records the highest resident memory seen while its block runs.

    ``with PeakMemory() as peak: work()`` then ``peak.peak_bytes`` (and ``peak.peak_gb``);
    ``peak.start_bytes`` is the memory before the block, so ``peak.added_bytes``
    is what the work itself needed on top. ``include_self=False`` measures only
    the children — how the lesson runner measures a papermill kernel.
    ``keep_timeline=True`` also keeps every sample as (Unix time, bytes), so a
    caller can tell which part of the work made the peak (the runner's per-cell table).
    """

    pid: int = field(default_factory=os.getpid)
    include_self: bool = True
    include_children: bool = True
    interval_s: float = 0.02
    keep_timeline: bool = False
    start_bytes: int = 0
    peak_bytes: int = 0
    timeline: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def _sample(self) -> None:
        process = psutil.Process(self.pid)
        children: list[psutil.Process] = []
        listed_at = -CHILDREN_RELIST_S
        while not self._stop.is_set():
            if self.include_children and time.monotonic() - listed_at >= CHILDREN_RELIST_S:
                children, listed_at = descendants(process), time.monotonic()
            sample = resident_bytes(process, self.include_self, self.include_children, children)
            self.peak_bytes = max(self.peak_bytes, sample)
            if self.keep_timeline:
                self.timeline.append((time.time(), sample))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakMemory":
        self.start_bytes = self.peak_bytes = resident_bytes(psutil.Process(self.pid), self.include_self, self.include_children)
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, resident_bytes(psutil.Process(self.pid), self.include_self, self.include_children))

    @property
    def added_bytes(self) -> int:
        """Peak minus the memory at the start: what the block needed on top of what was already there."""
        return self.peak_bytes - self.start_bytes

    @property
    def peak_gb(self) -> float:
        """The peak in GB (10^9 bytes), two decimals."""
        return round(self.peak_bytes / 1e9, 2)


def release_freed_memory() -> None:
    """Collect garbage, then hand the C allocator's free pages back to the operating system.

    glibc keeps the memory of deleted tensors for reuse, so after a lesson
    drops a model its process stays as large as its largest moment, and the
    next model is measured (and paid for) on top. ``malloc_trim`` returns
    those pages; on other platforms only the garbage collection runs.
    """
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            pass


def free_models(*models: torch.nn.Module) -> None:
    """Give models' memory back now, whoever still refers to them: every weight, gradient and buffer is emptied
    in place (the same tensor objects, no storage), then :func:`release_freed_memory` runs.

    ``del model`` frees nothing while a trainer, a peft wrapper, an optimizer or a notebook variable still holds
    the module or its weights; emptying the tensors does, whatever the tensor type (bitsandbytes' packed 4-bit
    weights included). A freed model has no values left: using it fails loudly, it does not quietly compute.
    """
    with torch.no_grad():
        for model in models:
            for tensor in [*model.parameters(), *model.buffers()]:
                tensor.grad = None
                tensor.data = torch.empty(0, dtype=tensor.dtype, device=tensor.device)
    release_freed_memory()


@contextmanager
def held(*models: torch.nn.Module) -> Iterator[Any]:
    """Hold models for one block of work, then free them (:func:`free_models`), even if the block fails.

    ``with held(load_model(path)) as model: ...`` for one model; ``with held(a, b) as (a, b): ...`` for several.
    """
    try:
        yield models[0] if len(models) == 1 else models
    finally:
        free_models(*models)


def release_memory_after_every_cell() -> bool:
    """In IPython (a notebook's kernel), run :func:`release_freed_memory` after every cell; True if registered.

    What a cell freed (a trainer, activations, a deleted model) then leaves the process before the next cell
    starts, so each cell's peak is its own work on top of what is still alive, not the largest moment so far.
    Registering twice (running ``setup()`` again) keeps one hook.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    if _release_after_cell not in shell.events.callbacks["post_run_cell"]:
        shell.events.register("post_run_cell", _release_after_cell)
    return True


def _release_after_cell(result: Any) -> None:
    release_freed_memory()
