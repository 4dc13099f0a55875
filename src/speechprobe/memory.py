"""Keep resident memory flat on long runs.

Extraction allocates many large, differently shaped tensors; glibc's heap keeps freed blocks of
that size class and resident memory grows with the number of batches (measured: 1.58x at 10x the
data). Serving large blocks from mmap returns them to the system on free (1.09x).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
LARGE_BLOCK = 4 * 1024 * 1024


@functools.cache
def return_large_blocks_to_os() -> bool:
    """Ask glibc to serve allocations over 128 KiB from mmap; a no-op elsewhere. True if applied."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK))
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return False
