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
from pyinstrument.frame import Frame
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


# Where a sample's innermost frames lead, checked in this order: (category, path parts).
CATEGORIES = (
    # Before botocore's: the token buckets wait inside botocore's before-call hook.
    ("AWS: client-side rate limit (token bucket)", ("wpenv/ratelimits.py",)),
    ("Kubernetes API (status writes, Events)", ("kubernetes/",)),
    ("MySQL", ("pymysql/",)),
    ("botocore: retry backoff (throttled, 5xx)", ("botocore/endpoint.py:_needs_retry",
                                                  "botocore/retries", "botocore/retryhandler")),
    ("AWS: waiting for the answer", ("botocore/httpsession", "urllib3/", "http/client")),
    ("botocore: parsing answers", ("botocore/parsers",)),
    ("botocore: signing", ("botocore/auth", "botocore/signers")),
    ("botocore: building requests", ("botocore/serialize", "botocore/validate",
                                     "botocore/endpoint_provider", "botocore/regions")),
    ("boto3/botocore: clients and the rest", ("botocore/", "boto3/")),
    ("kopf", ("kopf/",)),
    ("the operator's own code", ("wpenv/",)),
)
# A worker thread waiting for work, the event loop waiting for I/O: not time spent.
IDLE = (":SimpleQueue.get", "selectors.py:")


LEAVES: dict[str, float] = {}


def _short(step: str) -> str:
    where, _, function = step.rpartition(":")
    return f"{where.rpartition('site-packages/')[2]}:{function}"


def categorise(frame: Frame, stack: tuple[str, ...] = (), into: dict[str, float] | None = None,
               ) -> dict[str, float]:
    """Seconds of sampled time by category, from the innermost frame outwards.

    Also adds each busy sample's innermost frames (the caller of `[self]`) to LEAVES.
    """
    into = {} if into is None else into
    path = (*stack, f"{frame.file_path or ''}:{frame.function}")
    own = frame.time - sum(child.time for child in frame.children)
    if own > 0:
        category = next((name for name, parts in CATEGORIES
                         if any(part in step for step in reversed(path) for part in parts)),
                        "other")
        if any(idle in step for step in path[-3:] for idle in IDLE):
            category = "idle (waiting for work or I/O)"
        else:
            leaf = " < ".join(_short(step) for step in reversed(path[-4:-1]))
            LEAVES[leaf] = LEAVES.get(leaf, 0.0) + own
        into[category] = into.get(category, 0.0) + own
    for child in frame.children:
        categorise(child, path, into)
    return into


def summary(session: Session) -> str:
    """A table: where the handler threads' sampled time went."""
    root = session.root_frame()
    if root is None:
        return "(no samples)"
    spent = categorise(root)
    total = sum(spent.values()) or 1.0
    lines = [f"{seconds:9.1f}s {100 * seconds / total:5.1f}%  {name}"
             for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1])]
    lines.append("  busiest innermost frames (not idle):")
    lines += [f"  {seconds:9.1f}s  {leaf}"
              for leaf, seconds in sorted(LEAVES.items(), key=lambda kv: -kv[1])[:15]]
    LEAVES.clear()
    return "\n".join(lines)


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
        workers = SESSIONS[0] if SESSIONS else None
        for session in SESSIONS[1:]:
            workers = Session.combine(workers, session) if workers else session
        combined = Session.combine(main_session, workers) if workers else main_session
        text = ConsoleRenderer(unicode=False, color=False, show_all=False,
                               time="seconds").render(combined)
        table = (f"where the worker threads' time went ({len(SESSIONS)} threads):\n"
                 f"{summary(workers) if workers else '(none)'}\n"
                 f"where the event loop's thread's time went:\n{summary(main_session)}\n\n")
        out.write_text(table + text)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
