"""`python -m bench.profiled OUT`: the operator (`python -m wpenv.operator`) under pyinstrument.

pyinstrument samples one thread per profiler, and the operator's handlers run in kopf's
worker threads, so each worker thread gets a profiler of its own (around
concurrent.futures' worker loop) and the event loop's thread one more. When the operator
stops (SIGTERM: kopf finishes its handlers and returns), the workers are joined, every
session is combined, and the text rendering is written to OUT.
"""

from __future__ import annotations

import concurrent.futures.thread as pool_threads
import runpy
import sys
import threading
from pathlib import Path
from typing import Any

from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

INTERVAL = 0.001
SESSIONS: list[Session] = []
_LOCK = threading.Lock()
_worker = pool_threads._worker


def _profiled_worker(*args: Any, **kwargs: Any) -> None:
    """concurrent.futures' worker loop, sampled while it runs."""
    profiler = Profiler(interval=INTERVAL, async_mode="disabled")
    profiler.start()
    try:
        _worker(*args, **kwargs)
    finally:
        session = profiler.stop()
        with _LOCK:
            SESSIONS.append(session)


def main(out: Path) -> None:
    """Run the operator's entry point profiled; write the combined profile to `out`."""
    pool_threads._worker = _profiled_worker
    profiler = Profiler(interval=INTERVAL, async_mode="disabled")
    profiler.start()
    try:
        runpy.run_module("wpenv.operator", run_name="__main__")
    finally:
        main_session = profiler.stop()
        pool_threads._python_exit()
        combined = main_session
        for session in SESSIONS:
            combined = Session.combine(combined, session)
        text = ConsoleRenderer(unicode=False, color=False, show_all=False,
                               time="seconds").render(combined)
        out.write_text(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
