"""The operator with tracemalloc on: `python -m bench.traced` instead of `-m wpenv.operator`.

bench.scale starts it with --trace. On SIGUSR1 it writes the allocations still alive,
grouped by the line that made them (the top 40, with 8 frames each), to the file named by
WPENV_TRACE_FILE; the operator itself knows nothing of it.
"""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType

from wpenv.operator.__main__ import main

FRAMES = 8
TOP = 40


def dump(_signal: int, _frame: FrameType | None) -> None:
    """Write the largest live allocation sites, biggest first."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )
    stats = snapshot.statistics("traceback")
    total = sum(stat.size for stat in stats)
    lines = [f"traced: {total / 1e6:.1f} MB in {len(stats)} sites"]
    for stat in stats[:TOP]:
        lines.append(f"\n{stat.size / 1e6:8.2f} MB {stat.count:8d} blocks")
        lines.extend(f"    {line}" for line in stat.traceback.format(limit=FRAMES))
    Path(os.environ.get("WPENV_TRACE_FILE", "trace.txt")).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR1, dump)
    main()
