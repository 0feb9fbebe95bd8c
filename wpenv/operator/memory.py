"""Hand freed heap back to the system now and then (glibc's `malloc_trim`).

A provisioning burst parses many large answers (listings of every secret, rule and user
pool) on 20 worker threads. Python frees those objects, but glibc keeps the pages they
used inside its heaps, and RSS stays at the burst's peak: with 300 environments
provisioned in-process, tracemalloc saw about 170 MB of live allocations where RSS was
280 MB. `malloc_trim(0)` returns the free pages of every heap (since glibc 2.8, also
those in the middle of a heap, by `madvise`); capping the arenas (`MALLOC_ARENA_MAX`)
alone gained under a tenth. Where libc is not glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger("wpenv.memory")

TRIM_SECONDS = 30.0


def _load_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load_trim()


def trim() -> bool:
    """Give free heap pages back; True if glibc released any."""
    return bool(_TRIM is not None and _TRIM(0))


async def trim_periodically(seconds: float = TRIM_SECONDS) -> None:
    """`trim` every `seconds`, off the event loop (ctypes lets go of the GIL)."""
    if _TRIM is None:
        log.debug("no malloc_trim in this C library: heap not trimmed")
        return
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(trim)
