"""The heap trim: freed pages in the middle of glibc's heap go back to the system."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from wpenv.operator import memory

PAGE = os.sysconf("SC_PAGE_SIZE")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE


def test_trim_returns_the_pages_a_burst_left_behind() -> None:
    """Blocks over pymalloc's 512 bytes and under mmap's threshold come from glibc's heap;
    keeping every 20th alive pins the heap's top, so only a trim frees the rest."""
    burst = [bytearray(4000) for _ in range(25_000)]  # about 100 MB
    kept = burst[::20]
    del burst
    before = _rss()
    assert memory.trim() is True
    assert before - _rss() > 50 * 2**20
    del kept  # alive until here: it is what pins the heap


def test_the_periodic_task_trims_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    original = memory.trim

    def counted() -> bool:
        calls.append(original())
        return calls[-1]

    monkeypatch.setattr(memory, "trim", counted)

    async def run() -> None:
        task = asyncio.create_task(memory.trim_periodically(0.01))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(calls) >= 3
