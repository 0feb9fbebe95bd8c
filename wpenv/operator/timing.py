"""When periodic checks run, and how long suspends and resumes take.

- `until_turn`: each environment's periodic checks (drift, catch-up) run at a moment of
  its own within their interval, fixed by a hash of its uid on the wall clock. A thousand
  environments never check in the same second, and a restart keeps every moment where it
  was, so it does not burst either.
- `Stopwatch`: suspends and resumes (HLD 6: 2 and 5 minutes), timed in memory.
  Provisions and deprovisions are timed from what the object records (status startedAt,
  metadata deletionTimestamp); a suspend or resume leaves no such stamp, so its first pass
  starts a watch here.
"""

from __future__ import annotations

import hashlib
import threading
import time


def offset(uid: str, interval: float) -> float:
    """The environment's fixed moment within each `interval`: [0, interval), from its uid."""
    digest = hashlib.blake2b(uid.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


def until_turn(uid: str, interval: float, now: float | None = None) -> float:
    """Seconds from `now` (epoch seconds) to the environment's next moment in `interval`."""
    at = time.time() if now is None else now
    return (offset(uid, interval) - at) % interval


class Stopwatch:
    """When each environment's current suspend or resume began, in this process.

    A move spans several passes; the first one starts the watch, later ones of the same
    move keep it, and a move the other way restarts it. Lost on restart (then that move
    is simply not timed).
    """

    def __init__(self) -> None:
        self._began: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def start(self, uid: str, move: str) -> None:
        """Start timing `move` for `uid`, unless it is already being timed."""
        with self._lock:
            if self._began.get(uid, ("", 0.0))[0] != move:
                self._began[uid] = (move, time.monotonic())

    def stop(self, uid: str, move: str) -> float | None:
        """Seconds since `move` started, or None when it was not being timed."""
        with self._lock:
            began = self._began.get(uid)
            if began is None or began[0] != move:
                return None
            del self._began[uid]
        return time.monotonic() - began[1]

    def forget(self, uid: str) -> None:
        """Drop what was kept for an environment that is gone."""
        with self._lock:
            self._began.pop(uid, None)
