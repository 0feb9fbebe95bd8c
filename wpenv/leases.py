"""Coordination between operator processes through coordination.k8s.io/v1 Lease objects.

Several processes share one cluster (a standby per shard, several shards), and some limits
are global: the provisioning limit, the load balancers' capacity, the user-pool quota.
They agree through the Kubernetes API, the one server they all reach, the way client-go's
leader election does: a Lease names its holder and when it last renewed; it is taken with
optimistic concurrency (a create, or an update carrying the resourceVersion that was read,
which the API server refuses with 409 Conflict when someone else wrote first); a holder
renews it well within its duration; a lease not renewed for its duration has expired and
may be taken over. Expiry compares the holder's renewTime with this process's clock, so
the processes' clocks must agree (NTP) to well within a lease duration.

`Local` is the single-process fast path: no API call; critical sections and reservations
are kept in memory, for the threads of the one process. `install` chooses one for the process (the
operator's start-up does, from WPENV_COORDINATION); the resource layer asks `current()`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from wpenv import kube, reasons
from wpenv.api.models import GROUP
from wpenv.errors import TransientError

log = logging.getLogger(__name__)

# The label every lease of ours carries, saying what it is for (a kubectl selector).
PURPOSE = f"{GROUP}/lease"
# The annotation naming what a lease is held for (an environment's uid, a tenant).
FOR = f"{GROUP}/for"
CONFLICT = 409  # AlreadyExists on create, Conflict on a stale resourceVersion
NOT_FOUND = 404
BUSY = "another operator process holds the {name} lease; trying again shortly"
THREAD_BUSY = "another environment of this process is in {name}; trying again shortly"
# How long a thread waits for another thread of its process to leave a critical section.
LOCAL_WAIT_SECONDS = 30.0


def process_identity() -> str:
    """Who holds a lease: the pod (its host name) and this process, as client-go names it."""
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


IDENTITY = process_identity()


def _micro_time(moment: datetime) -> str:
    """A MicroTime as the API server parses it (six fractional digits, always)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parsed_time(value: Any) -> datetime | None:
    """A MicroTime as the API server writes it (RFC 3339, UTC), or None when unset."""
    return datetime.fromisoformat(value) if value else None


def lease_path(namespace: str, name: str = "") -> str:
    """The path of a namespace's Leases, or of one."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{path}/{name}" if name else path


@dataclass(frozen=True)
class Lease:
    """One Lease as read: who holds it, since when, and the version to write against."""

    name: str
    version: str
    holder: str = ""
    duration: int = 0
    renewed: datetime | None = None
    acquired: datetime | None = None
    transitions: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Lease:
        """From the Lease object as the API server answers it."""
        spec, meta = obj.get("spec") or {}, obj.get("metadata") or {}
        return cls(
            name=str(meta.get("name") or ""),
            version=str(meta.get("resourceVersion") or ""),
            holder=str(spec.get("holderIdentity") or ""),
            duration=int(spec.get("leaseDurationSeconds") or 0),
            renewed=_parsed_time(spec.get("renewTime")),
            acquired=_parsed_time(spec.get("acquireTime")),
            transitions=int(spec.get("leaseTransitions") or 0),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
        )

    @property
    def held_for(self) -> str:
        """What the holder holds it for (the FOR annotation), empty when free."""
        return self.annotations.get(FOR, "") if self.holder else ""

    def expired(self, now: datetime | None = None) -> bool:
        """Not renewed within its duration: its holder is presumed gone."""
        if self.renewed is None:
            return True
        now = now or datetime.now(UTC)
        return now >= self.renewed + timedelta(seconds=self.duration)

    def free(self, now: datetime | None = None) -> bool:
        """Nobody holds it: released, or expired."""
        return not self.holder or self.expired(now)


class Leases:
    """Lease objects in one namespace, read and written as one holder (`identity`)."""

    def __init__(
        self, namespace: str, duration: int, identity: str = IDENTITY,
        api: kube.Api | None = None,
    ) -> None:
        self.namespace = namespace
        self.duration = duration
        self.identity = identity
        self.api = api or kube.api()

    def _send(self, method: str, name: str = "", **kwargs: Any) -> Any:
        return self.api.request(method, lease_path(self.namespace, name), **kwargs)

    def get(self, name: str) -> Lease | None:
        """The lease as it is now, or None when there is none of that name."""
        try:
            return Lease.of(self._send("GET", name))
        except kube.ApiError as exc:
            if exc.status == NOT_FOUND:
                return None
            raise

    def list(self, purpose: str) -> list[Lease]:
        """Every lease of one purpose (the PURPOSE label), in name order."""
        found = self._send("GET", query={"labelSelector": f"{PURPOSE}={purpose}"}) or {}
        items = found.get("items") or []
        return sorted((Lease.of(item) for item in items), key=lambda lease: lease.name)

    def _body(
        self, name: str, purpose: str, held_for: str, before: Lease | None, version: str = ""
    ) -> dict[str, Any]:
        """The Lease as this holder writes it: renewed now, acquired now if newly taken."""
        now = datetime.now(UTC)
        ours = before is not None and before.holder == self.identity and not before.expired(now)
        acquired = before.acquired if ours and before and before.acquired else now
        transitions = 0 if before is None else before.transitions + (0 if ours else 1)
        metadata: dict[str, Any] = {
            "name": name, "labels": {PURPOSE: purpose}, "annotations": {FOR: held_for},
        }
        if version:
            metadata["resourceVersion"] = version
        return {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                "acquireTime": _micro_time(acquired), "renewTime": _micro_time(now),
                "leaseTransitions": transitions,
            },
        }

    def acquire(
        self, name: str, purpose: str, held_for: str = "", *, take: bool = False
    ) -> Lease | None:
        """Take the lease, or renew it if ours; None when another holder keeps it.

        Free (released or expired) leases are taken over; `take` takes one held by another
        process too, for a lease named after what it is for (only one process works on one
        environment at a time). Every write carries the version read: of two processes
        that read the same version, the API server lets one write and refuses the other.
        """
        before = self.get(name)
        mine = before is not None and before.holder == self.identity
        if before is not None and not (mine or take or before.free()):
            return None
        body = self._body(name, purpose, held_for, before, before.version if before else "")
        try:
            if before is None:
                made = self._send("POST", body=body)
            else:
                made = self._send("PUT", name, body=body)
        except kube.ApiError as exc:
            if exc.status in (CONFLICT, NOT_FOUND):
                return None  # another holder wrote first (or released and deleted it)
            raise
        return Lease.of(made)

    def renew(self, lease: Lease) -> Lease | None:
        """Renew a lease held since `lease` was read; None when it is no longer ours."""
        if lease.holder != self.identity:
            return None
        body = self._body(lease.name, lease.labels.get(PURPOSE, ""),
                          lease.annotations.get(FOR, ""), lease, lease.version)
        try:
            return Lease.of(self._send("PUT", lease.name, body=body))
        except kube.ApiError as exc:
            if exc.status in (CONFLICT, NOT_FOUND):
                return None
            raise

    def release(self, lease: Lease) -> bool:
        """Give a lease up (no holder), against the version held; False if it was not ours."""
        if lease.holder != self.identity:
            return False
        body = self._body(lease.name, lease.labels.get(PURPOSE, ""), "", lease, lease.version)
        body["spec"] = {**body["spec"], "holderIdentity": None}
        try:
            self._send("PUT", lease.name, body=body)
        except kube.ApiError as exc:
            if exc.status in (CONFLICT, NOT_FOUND):
                return False
            raise
        return True

    def delete(self, name: str) -> None:
        """Remove a lease for good (what it was for is gone); harmless if already gone."""
        try:
            self._send("DELETE", name)
        except kube.ApiError as exc:
            if exc.status != NOT_FOUND:
                raise

    @contextlib.contextmanager
    def exclusive(self, name: str, wait: float, poll: float = 0.2) -> Iterator[Mutex]:
        """Hold `name` as a mutex for the block; TransientError when not had within `wait`.

        The Lease keeps other processes out; its holder is this process, so the threads of
        this process are kept apart by a lock of their own (`within_process`), taken first.
        Renewed in the background while the block runs (a slow block keeps it), released
        after; a holder that dies leaves it to expire. A block that must not act once the
        lease is lost (it could not be renewed within its duration) asks `Mutex.check`.
        """
        deadline = time.monotonic() + wait
        with within_process(f"{self.namespace}/{name}", wait):
            held = self.acquire(name, "mutex", self.identity)
            while held is None:
                if time.monotonic() >= deadline:
                    raise TransientError(reasons.COORDINATION_BUSY, BUSY.format(name=name))
                time.sleep(poll)
                held = self.acquire(name, "mutex", self.identity)
            mutex = Mutex(held)
            renewer = Renewer(self, lost=lambda _name: mutex.lost.set())
            renewer.keep(held)
            renewer.start()
            try:
                yield mutex
            finally:
                renewer.stop()
                last = renewer.drop(name)
                with contextlib.suppress(kube.ApiError):
                    if last is not None:
                        self.release(last)


@dataclass
class Mutex:
    """A mutex Lease held for a block, and whether it was lost meanwhile."""

    lease: Lease
    lost: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        """TransientError if the lease was lost: another process may be in the block too."""
        if self.lost.is_set():
            raise TransientError(reasons.COORDINATION_BUSY,
                                 BUSY.format(name=self.lease.name))


def still_held(guard: object) -> None:
    """What `exclusive` gave, checked before the block's decisive write: TransientError if
    it was a mutex Lease that was lost meanwhile (nothing to check for `Local`)."""
    if isinstance(guard, Mutex):
        guard.check()


# One lock per critical section name, for the threads of this process (kopf runs sync
# handlers in a thread pool): a Lease names a process, so it cannot tell them apart.
_GATES: dict[str, threading.Lock] = {}
_GATES_LOCK = threading.Lock()


@contextlib.contextmanager
def within_process(name: str, wait: float) -> Iterator[None]:
    """One thread of this process at a time in the block named `name`; TransientError
    when another thread keeps it for longer than `wait` seconds."""
    with _GATES_LOCK:
        gate = _GATES.setdefault(name, threading.Lock())
    if not gate.acquire(timeout=max(wait, 0.0)):
        raise TransientError(reasons.COORDINATION_BUSY, THREAD_BUSY.format(name=name))
    try:
        yield
    finally:
        gate.release()


class Renewer:
    """Renews this process's leases in the background, well within their duration.

    A lease another process took (or that cannot be renewed for its duration) is dropped
    and `lost` is called with its name: its holder must stop acting on it.
    """

    def __init__(self, leases: Leases, lost: Callable[[str], None] = lambda _name: None) -> None:
        self.leases = leases
        self.lost = lost
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def keep(self, lease: Lease) -> None:
        """Renew this lease from now on."""
        with self._lock:
            self._held[lease.name] = lease

    def drop(self, name: str) -> Lease | None:
        """Stop renewing it; the last version held, to release it against."""
        with self._lock:
            return self._held.pop(name, None)

    @staticmethod
    def overdue(lease: Lease) -> bool:
        """Two thirds of its duration without renewal: give it up before it can expire and
        another process take it (client-go's renew deadline)."""
        if lease.renewed is None:
            return True
        deadline = lease.renewed + timedelta(seconds=lease.duration * 2 / 3)
        return datetime.now(UTC) >= deadline

    def renew_all(self) -> None:
        """One round: renew every lease kept; drop and report the ones that are lost."""
        with self._lock:
            held = list(self._held.values())
        for lease in held:
            try:
                renewed = self.leases.renew(lease)
            except Exception as exc:  # the API server unreachable: try again next round
                log.warning("could not renew lease %s: %s", lease.name, type(exc).__name__)
                renewed = None if self.overdue(lease) else lease
            with self._lock:
                if lease.name not in self._held:
                    continue  # dropped meanwhile
                if renewed is None:
                    self._held.pop(lease.name)
                else:
                    self._held[lease.name] = renewed
            if renewed is None:
                log.warning("lost lease %s", lease.name)
                self.lost(lease.name)

    def start(self) -> None:
        """Renew every third of the lease duration, in a daemon thread."""
        period = max(self.leases.duration / 3, 0.2)

        def run() -> None:
            while not self._stop.wait(period):
                self.renew_all()

        self._thread = threading.Thread(target=run, name="lease-renewer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the leases expire, or are released by their owners); a round
        under way finishes first, so a release after this writes the latest version."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)


class Coordinator(Protocol):
    """What the resource layer asks of the coordination in force (`current()`)."""

    def exclusive(self, name: str) -> contextlib.AbstractContextManager[object]:
        """A block no other process runs at the same time under the same name."""

    def reserve(self, name: str, purpose: str, held_for: str) -> None:
        """Hold (or renew) a reservation named after what it is for."""

    def reservations(self, purpose: str) -> list[Lease]:
        """The live reservations of one purpose (expired ones are removed)."""

    def unreserve(self, name: str) -> None:
        """Remove a reservation whose subject is gone."""


class Local:
    """One process: no API call. Its threads still take turns in a critical section, and
    reservations are kept in memory: the environments provisioning at once in this process
    must see each other's places before their rules exist (a restart forgets them; each
    environment reserves again at its next pass, and AWS's own quota refusal remains)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reserved: dict[str, Lease] = {}

    def exclusive(self, name: str) -> contextlib.AbstractContextManager[object]:
        """No other process to exclude; the threads of this one still take turns."""
        return within_process(name, LOCAL_WAIT_SECONDS)

    def reserve(self, name: str, purpose: str, held_for: str) -> None:
        """Hold (or renew) the reservation in memory."""
        lease = Lease(name=name, version="", holder=IDENTITY, labels={PURPOSE: purpose},
                      annotations={FOR: held_for})
        with self._lock:
            self._reserved[name] = lease

    def reservations(self, purpose: str) -> list[Lease]:
        """This process's reservations of one purpose, in name order."""
        with self._lock:
            return sorted((lease for lease in self._reserved.values()
                           if lease.labels.get(PURPOSE) == purpose), key=lambda lease: lease.name)

    def unreserve(self, name: str) -> None:
        """Forget it; harmless if gone."""
        with self._lock:
            self._reserved.pop(name, None)


class Coordinated:
    """Several processes: critical sections and reservations as Lease objects.

    A reservation lasts `reservation_seconds` from its last renewal; whoever works on its
    subject renews it at each pass, and may take it from a process that is gone.
    """

    def __init__(self, leases: Leases, wait: float, reservation_seconds: int) -> None:
        self.leases = leases
        self.wait = wait
        self.reserving = Leases(leases.namespace, reservation_seconds, leases.identity,
                                leases.api)

    def exclusive(self, name: str) -> contextlib.AbstractContextManager[object]:
        """The named mutex lease, held for the block."""
        return self.leases.exclusive(name, self.wait)

    def reserve(self, name: str, purpose: str, held_for: str) -> None:
        """Take or renew the reservation, whoever held it before."""
        if self.reserving.acquire(name, purpose, held_for, take=True) is None:
            raise TransientError(reasons.COORDINATION_BUSY, BUSY.format(name=name))

    def reservations(self, purpose: str) -> list[Lease]:
        """Live reservations; an expired one is deleted (its subject was abandoned)."""
        live = []
        for lease in self.reserving.list(purpose):
            if lease.free():
                self.reserving.delete(lease.name)
            else:
                live.append(lease)
        return live

    def unreserve(self, name: str) -> None:
        """Delete it; harmless if gone."""
        self.reserving.delete(name)


_CURRENT: list[Coordinator] = [Local()]


def install(coordinator: Coordinator) -> Coordinator:
    """Make `coordinator` the process's coordination; returns the one it replaces."""
    before, _CURRENT[0] = _CURRENT[0], coordinator
    return before


def current() -> Coordinator:
    """The coordination in force (Local until the operator's start-up installs another)."""
    return _CURRENT[0]
