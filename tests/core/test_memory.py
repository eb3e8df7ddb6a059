"""Peak memory sampling: it sees memory a block allocates and frees before the block ends."""

import time

import numpy as np

from course_lib.core.memory import PeakMemory


def test_a_temporary_allocation_shows_in_the_peak() -> None:
    with PeakMemory(interval_s=0.001) as peak:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched so it is resident
        block += 1
        time.sleep(0.2)  # a loaded machine may not schedule the sampler inside a short burst; give it turns
        del block
    assert peak.added_bytes > 48 * 2**20, peak
    assert peak.peak_bytes >= peak.start_bytes > 0 and 0 < peak.peak_gb < 64


def test_an_idle_block_adds_almost_nothing() -> None:
    with PeakMemory() as peak:
        pass
    assert peak.added_bytes < 16 * 2**20
