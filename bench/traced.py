"""The operator with tracemalloc on: `python -m bench.traced` instead of `-m wpenv.operator`.

bench.scale starts it with --trace. On SIGUSR1 it writes the allocations still alive,
grouped by the line that made them (the top 40, with 8 frames each), to the file named by
WPENV_TRACE_FILE, after a summary by owner: the package (or wpenv module) of the newest
frame outside the standard library, so json's decoding is counted to whoever asked for it.
Before both it tells where the process's heap is: in Python's own allocator (its arenas,
and how much of them live objects use) or in the C library's (glibc's mallinfo2), the
figures that tell live objects from memory only fragmentation holds.
WPENV_TRACE_FRAMES=0 leaves tracemalloc off (it held the operator at a full core with
400 environments provisioning): the dump then has the heap figures and a census of the
live objects the garbage collector tracks, by type, and the dicts by their keys, so a
kind of cached answer shows as one line (count and MB, its own strings counted in).
The operator itself knows nothing of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import importlib
import os
import signal
import sys
import tempfile
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

FRAMES = int(os.environ.get("WPENV_TRACE_FRAMES", "8"))
TOP = 40
OWNERS = 20
STDLIB = os.path.dirname(os.__file__)


def owner(traceback: tracemalloc.Traceback) -> str:
    """Who made an allocation: the newest frame's package outside the standard library."""
    for frame in reversed(traceback):
        name = frame.filename
        if "site-packages/" in name:
            return name.split("site-packages/", 1)[1].split("/", 1)[0]
        if "/wpenv/" in name:
            return "wpenv/" + name.split("/wpenv/", 1)[1].removesuffix(".py")
        if not name.startswith(STDLIB):
            return name
    return "stdlib: " + os.path.basename(traceback[-1].filename) if len(traceback) else "?"


def by_owner(stats: list[tracemalloc.Statistic]) -> list[str]:
    """The summary lines: MB and blocks per owner, biggest first."""
    sizes: dict[str, list[int]] = {}
    for stat in stats:
        entry = sizes.setdefault(owner(stat.traceback), [0, 0])
        entry[0] += stat.size
        entry[1] += stat.count
    rows = sorted(sizes.items(), key=lambda kv: -kv[1][0])[:OWNERS]
    return [f"{size / 1e6:8.2f} MB {count:8d} blocks  {name}" for name, (size, count) in rows]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def heaps() -> list[str]:
    """Python's arenas (from `sys._debugmallocstats`) and glibc's heap, in MB."""
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        stats = out.read()
    wanted = ("# arenas allocated current", "# bytes in allocated blocks",
              "# bytes in available blocks")
    text = stats.splitlines()
    arenas = next((line for line in text if line.startswith("Total")), "")  # the first
    lines = ["pymalloc: " + " ".join(line.split())
             for line in [*(line for line in text if line.startswith(wanted)), arenas] if line]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return lines
    lines.append(f"glibc: heap {info.arena / 1e6:.1f} MB, mmapped {info.hblkhd / 1e6:.1f} MB, "
                 f"in use {info.uordblks / 1e6:.1f} MB, free {info.fordblks / 1e6:.1f} MB")
    return lines


def _own_size(obj: Any) -> int:
    """The object and the strings and numbers it holds directly (not its containers)."""
    size = sys.getsizeof(obj)
    items = obj.items() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()
    for item in items:
        for part in item if isinstance(obj, dict) else (item,):
            if isinstance(part, (str, bytes, int, float)):
                size += sys.getsizeof(part)
    return size


def census() -> list[str]:
    """Live objects by type, and dicts by their first keys: MB and count, biggest first."""
    types: dict[str, list[int]] = {}
    shapes: dict[str, list[int]] = {}
    for obj in gc.get_objects():
        size = _own_size(obj)
        entry = types.setdefault(type(obj).__name__, [0, 0])
        entry[0] += size
        entry[1] += 1
        if isinstance(obj, dict) and len(obj) >= 3:
            keys = sorted(str(k) for k in obj)[:4]
            shape = shapes.setdefault(",".join(keys)[:90], [0, 0])
            shape[0] += size
            shape[1] += 1

    def top(table: dict[str, list[int]]) -> list[str]:
        rows = sorted(table.items(), key=lambda kv: -kv[1][0])[:TOP]
        return [f"{size / 1e6:8.2f} MB {count:8d}  {name}" for name, (size, count) in rows]

    return ["objects by type:", *top(types), "dicts by keys:", *top(shapes)]


def dump(_signal: int, _frame: FrameType | None) -> None:
    """Write the largest live allocation sites, biggest first."""
    if not tracemalloc.is_tracing():
        lines = [*heaps(), *census()]
        Path(os.environ.get("WPENV_TRACE_FILE", "trace.txt")).write_text("\n".join(lines) + "\n")
        return
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )
    stats = snapshot.statistics("traceback")
    total = sum(stat.size for stat in stats)
    lines = [*heaps(), f"traced: {total / 1e6:.1f} MB in {len(stats)} sites", "by owner:",
             *by_owner(stats)]
    for stat in stats[:TOP]:
        lines.append(f"\n{stat.size / 1e6:8.2f} MB {stat.count:8d} blocks")
        lines.extend(f"    {line}" for line in stat.traceback.format(limit=FRAMES))
    Path(os.environ.get("WPENV_TRACE_FILE", "trace.txt")).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if FRAMES:
        tracemalloc.start(FRAMES)  # before the operator's imports: what they keep is counted too
    signal.signal(signal.SIGUSR1, dump)
    importlib.import_module("wpenv.operator.__main__").main()
