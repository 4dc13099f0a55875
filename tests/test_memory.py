import sys

import numpy as np
import pytest

from speechprobe.memory import trim_heap

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap and /proc")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_trim_heap_returns_pages_freed_between_live_blocks():
    keep, junk = [], []
    for i in range(3000):  # 64 KiB blocks from the heap, every other one freed: holes free() keeps
        (junk if i % 2 else keep).append(np.ones(64 * 1024 // 8))
    junk.clear()
    held = _rss_mb()
    assert trim_heap()
    assert held - _rss_mb() > 50  # ~94 MiB of holes go back to the system
    assert all(block[0] == 1.0 for block in keep)  # live blocks untouched
