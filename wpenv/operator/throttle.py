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

import logging
import threading
import time
from collections.abc import Callable

from wpenv import kube
from wpenv.leases import Lease, Leases, Renewer

log = logging.getLogger(__name__)
# How much of the typical hold the latest one makes up (an exponential moving average).
HOLD_WEIGHT = 0.3


class ProvisionSlots:
    """A counted set of slot holders, safe across kopf's worker threads."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._holders: set[str] = set()
        self._waiting: dict[str, None] = {}  # insertion-ordered: the queue
        self._finished: set[str] = set()
        self._lock = threading.Lock()
        self._clock = clock
        self._since: dict[str, float] = {}  # holder -> when it took its slot
        self._typical: float | None = None  # how long a slot is held, lately

    def acquire(self, uid: str) -> bool:
        """Take a slot (or keep the one held); False means wait, in FIFO order."""
        with self._lock:
            if self._held_or_queued(uid):
                return True
            first_waiters = list(self._waiting)[: self.limit - len(self._holders)]
            if uid in first_waiters:
                self._hold(uid)
                return True
            return False

    def release(self, uid: str) -> None:
        """Give the slot back (Active, Failed or deleted); harmless if none was held."""
        with self._lock:
            self._drop(uid)

    def finish(self, uid: str) -> None:
        """The provision of `uid` ended Active: give the slot back and remember it."""
        with self._lock:
            self._drop(uid)
            self._finished.add(uid)

    def _held_or_queued(self, uid: str) -> bool:
        """True when `uid` holds a slot; else it joins the queue (the caller holds the lock)."""
        if uid in self._holders:
            return True
        self._waiting.setdefault(uid, None)
        return False

    def _hold(self, uid: str) -> None:
        """`uid` leaves the queue for a slot (the caller holds the lock)."""
        self._holders.add(uid)
        self._waiting.pop(uid, None)
        self._since[uid] = self._clock()

    def _drop(self, uid: str) -> None:
        """No slot and no place in the queue for `uid` (the caller holds the lock)."""
        self._holders.discard(uid)
        self._waiting.pop(uid, None)
        since = self._since.pop(uid, None)
        if since is not None:
            held = self._clock() - since
            typical = self._typical
            self._typical = held if typical is None else (
                HOLD_WEIGHT * held + (1 - HOLD_WEIGHT) * typical)

    def expected_wait(self, uid: str) -> float | None:
        """Seconds until `uid` can expect a slot (None: no provision has ended yet here).

        The holders free their slots about a typical hold after they took them, one round
        of `limit` after another: the queue's k-th waiter (from 0) takes the slot that
        frees (k mod limit)-th, k // limit rounds on. Only this process's holders are known
        (across processes a slot may free at any time): a slot not held here counts as
        free now, so the estimate errs towards looking early.
        """
        with self._lock:
            typical = self._typical
            if typical is None or uid not in self._waiting:
                return None
            now = self._clock()
            place = list(self._waiting).index(uid)
            frees = sorted(self._since[h] + typical for h in self._holders if h in self._since)
            frees += [now] * max(0, self.limit - len(frees))
            rounds, slot = divmod(place, self.limit)
            return max(0.0, frees[slot] + rounds * typical - now)

    def finished(self, uid: str) -> bool:
        """Whether `uid` finished provisioning in this process (whatever a stale view says)."""
        with self._lock:
            return uid in self._finished

    def forget(self, uid: str) -> None:
        """`uid` is gone: no slot, no place in the queue, nothing remembered."""
        with self._lock:
            self._drop(uid)
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


    @property
    def held(self) -> int:
        """How many provisions this process runs now (its share of `in_use`)."""
        return self.in_use


SLOT_PURPOSE = "provision-slot"


def slot_name(index: int) -> str:
    """The Lease of one provisioning slot."""
    return f"wpenv-provision-slot-{index}"


class LeasedSlots(ProvisionSlots):
    """The same slots, counted across every operator process: one Lease per slot.

    A slot is the Lease `wpenv-provision-slot-<i>` (i below the limit), held by this
    process for one environment (its uid in the lease's annotation) and renewed in the
    background (`leases.Renewer`). A free or expired slot is taken with optimistic
    concurrency, so two processes never hold one slot. A process that takes over a shard
    takes over the slots its environments held: only one process works on an environment.
    The queue's order is kept among this process's waiters; across processes it is
    first come first served, as their polls arrive.
    """

    def __init__(self, limit: int, leases: Leases,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(limit, clock)
        self.leases = leases
        self.renewer = Renewer(leases, lost=self._lost)
        self._slots: dict[str, str] = {}  # uid -> the slot lease it holds
        self._seen_in_use = 0
        self._taking = threading.Lock()

    def acquire(self, uid: str) -> bool:
        """Hold a slot lease for `uid` (or keep the one held); False means wait."""
        with self._lock:
            if self._held_or_queued(uid):
                return True
            turn = uid in list(self._waiting)[: self.limit]
        if not turn:
            return False
        with self._taking:  # one at a time: two passes of one uid must not take two slots
            with self._lock:
                if uid in self._holders:
                    return True
            lease = self._take(uid)
            return lease is not None and self._won(uid, lease)

    def _won(self, uid: str, lease: Lease) -> bool:
        """Record the slot taken and renew it from now on (or give it back at once if
        `uid` was released meanwhile: its environment is gone)."""
        with self._lock:
            gone = uid not in self._waiting
            if not gone:
                self._hold(uid)
                self._slots[uid] = lease.name
        if gone:
            self.leases.release(lease)
            return False
        self.renewer.keep(lease)
        return True

    def _take(self, uid: str) -> Lease | None:
        """The slot `uid` already holds (from a process gone), else a free one, else None."""
        slots = {lease.name: lease for lease in self.leases.list(SLOT_PURPOSE)}
        names = [slot_name(i) for i in range(self.limit)]
        self._seen_in_use = sum(1 for n in names if n in slots and not slots[n].free())
        for name in names:
            found = slots.get(name)
            if found is not None and found.held_for == uid and not found.free():
                return self.leases.acquire(name, SLOT_PURPOSE, uid, take=True)
        for name in names:
            found = slots.get(name)
            if found is None or found.free():
                taken = self.leases.acquire(name, SLOT_PURPOSE, uid)
                if taken is not None:
                    self._seen_in_use += 1
                    return taken
        return None

    def release(self, uid: str) -> None:
        """Give the slot lease back (Active, Failed or deleted); harmless if none was held."""
        with self._lock:
            name = self._slots.pop(uid, None)
        super().release(uid)
        held = self.renewer.drop(name) if name else None
        if held is None:
            return
        try:
            self.leases.release(held)
        except kube.ApiError as exc:  # it expires by itself
            log.warning("could not release %s: %s", held.name, exc.reason)

    def _lost(self, name: str) -> None:
        """Another process took the slot: this environment must queue again."""
        with self._lock:
            for uid, held in list(self._slots.items()):
                if held == name:
                    self._slots.pop(uid)
                    self._holders.discard(uid)
                    self._since.pop(uid, None)  # not a hold that ended: no sample

    @property
    def in_use(self) -> int:
        """Slots in use across every process, as last seen (never fewer than ours)."""
        with self._lock:
            return max(self._seen_in_use, len(self._holders))

    @property
    def held(self) -> int:
        """The provisions this process runs."""
        with self._lock:
            return len(self._holders)
