"""At most N provisions at once (HLD 5.3: queue-based throttling, 10 concurrent).

A provision spans many handler calls (each pass returns and is retried), on different
worker threads, so a semaphore held across calls will not do. This keeps the set of
environments currently holding a slot; the rest wait in PendingProvisioning and are told
their place in the queue.

It also remembers who finished provisioning in this process (`finish`, `finished`): under
load kopf may hand a handler an object older than the status the operator last wrote (its
watch lags behind its own patches), and such a stale view must not queue an Active
environment for a provision it already made.
"""

from __future__ import annotations

import threading


class ProvisionSlots:
    """A counted set of slot holders, safe across kopf's worker threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._holders: set[str] = set()
        self._waiting: dict[str, None] = {}  # insertion-ordered: the queue
        self._finished: set[str] = set()
        self._lock = threading.Lock()

    def acquire(self, uid: str) -> bool:
        """Take a slot (or keep the one held); False means wait, in FIFO order."""
        with self._lock:
            if uid in self._holders:
                return True
            self._waiting.setdefault(uid, None)
            first_waiters = list(self._waiting)[: self.limit - len(self._holders)]
            if uid in first_waiters:
                self._holders.add(uid)
                self._waiting.pop(uid, None)
                return True
            return False

    def release(self, uid: str) -> None:
        """Give the slot back (Active, Failed or deleted); harmless if none was held."""
        with self._lock:
            self._holders.discard(uid)
            self._waiting.pop(uid, None)

    def finish(self, uid: str) -> None:
        """The provision of `uid` ended Active: give the slot back and remember it."""
        with self._lock:
            self._holders.discard(uid)
            self._waiting.pop(uid, None)
            self._finished.add(uid)

    def finished(self, uid: str) -> bool:
        """Whether `uid` finished provisioning in this process (whatever a stale view says)."""
        with self._lock:
            return uid in self._finished

    def forget(self, uid: str) -> None:
        """`uid` is gone: no slot, no place in the queue, nothing remembered."""
        with self._lock:
            self._holders.discard(uid)
            self._waiting.pop(uid, None)
            self._finished.discard(uid)

    def position(self, uid: str) -> int:
        """1-based place in the queue, 0 when not waiting."""
        with self._lock:
            order = list(self._waiting)
            return order.index(uid) + 1 if uid in order else 0

    @property
    def in_use(self) -> int:
        """How many provisions run now."""
        with self._lock:
            return len(self._holders)

    @property
    def waiting(self) -> int:
        """How many environments wait for a slot now."""
        with self._lock:
            return len(self._waiting)

