"""Lease logic against the real local kube-apiserver: acquire, renew, expire, take over,
conflict on resourceVersion, the mutex, the background renewer and reservations.

Each test works in a namespace of its own, as holders with identities of their own (two
`Leases` with different identities are two operator processes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.kubeapi import api_for
from wpenv import kube, reasons
from wpenv.errors import TransientError
from wpenv.leases import PURPOSE, Coordinated, Leases, Renewer, still_held

pytestmark = pytest.mark.e2e

Holder = Callable[..., Leases]


def coordination_api(platform: dict[str, str]) -> kube.Api:
    """The API as the platform's admin."""
    return api_for(platform["KUBECONFIG"])


@pytest.fixture
def holder(platform: dict[str, str], namespace: str) -> Holder:
    """A process's view of the namespace's Leases, as `identity`."""
    api = coordination_api(platform)

    def make(identity: str, duration: int = 30) -> Leases:
        return Leases(namespace, duration, identity=identity, api=api)

    return make


def test_a_free_lease_is_created_and_another_holder_is_refused(holder: Holder) -> None:
    a, b = holder("a"), holder("b")
    taken = a.acquire("slot", "test", "env-1")
    assert taken is not None and taken.holder == "a" and taken.held_for == "env-1"
    assert taken.transitions == 0 and not taken.free()
    assert b.acquire("slot", "test", "env-2") is None
    seen = b.get("slot")
    assert seen is not None and seen.holder == "a" and seen.labels[PURPOSE] == "test"


def test_renewing_moves_the_renew_time_and_keeps_the_acquire_time(holder: Holder) -> None:
    a = holder("a")
    taken = a.acquire("slot", "test", "env-1")
    assert taken is not None and taken.renewed is not None
    time.sleep(0.05)
    renewed = a.renew(taken)
    assert renewed is not None
    assert renewed.renewed is not None and renewed.renewed > taken.renewed
    assert renewed.acquired == taken.acquired
    assert renewed.version != taken.version and renewed.transitions == 0


def test_a_stale_resource_version_is_refused(holder: Holder) -> None:
    """Optimistic concurrency: a write against a version someone else replaced fails."""
    a = holder("a")
    first = a.acquire("slot", "test", "env-1")
    assert first is not None
    second = a.renew(first)
    assert second is not None
    assert a.renew(first) is None  # `first`'s version is gone: 409 Conflict
    assert a.release(first) is False
    now = a.get("slot")
    assert now is not None and now.version == second.version and now.holder == "a"


def test_two_holders_racing_for_one_free_lease_get_it_once(holder: Holder) -> None:
    """Both read it free; the API server lets the first write through and refuses the other."""
    a, b = holder("a"), holder("b")
    made = a.acquire("slot", "test")
    assert made is not None and a.release(made)
    read = a.get("slot")
    assert read is not None and read.free()
    first = a._body("slot", "test", a.identity, read, read.version)
    second = b._body("slot", "test", b.identity, read, read.version)
    a._send("PUT", "slot", body=first)
    with pytest.raises(kube.ApiError) as refused:
        b._send("PUT", "slot", body=second)
    assert refused.value.status == 409
    assert b.acquire("slot", "test") is None  # and acquire reads it held, so refrains
    now = a.get("slot")
    assert now is not None and now.holder == "a" and now.transitions == 1


def test_an_expired_lease_is_taken_over_and_its_old_holder_loses_it(holder: Holder) -> None:
    a, b = holder("a", duration=1), holder("b", duration=1)
    old = a.acquire("slot", "test", "env-1")
    assert old is not None
    assert b.acquire("slot", "test", "env-2") is None
    time.sleep(1.2)
    assert old.expired()
    new = b.acquire("slot", "test", "env-2")
    assert new is not None and new.holder == "b" and new.held_for == "env-2"
    assert new.transitions == 1 and new.acquired != old.acquired
    assert a.renew(old) is None


def test_a_released_lease_is_free_for_the_next_holder(holder: Holder) -> None:
    a, b = holder("a"), holder("b")
    taken = a.acquire("slot", "test", "env-1")
    assert taken is not None
    assert a.release(taken)
    freed = b.get("slot")
    assert freed is not None and freed.free() and freed.held_for == ""
    assert b.acquire("slot", "test", "env-2") is not None


def test_take_takes_a_live_lease_from_another_holder(holder: Holder) -> None:
    """For a lease named after its subject: a process that takes over the subject."""
    a, b = holder("a"), holder("b")
    assert a.acquire("env-1", "test", "env-1") is not None
    taken = b.acquire("env-1", "test", "env-1", take=True)
    assert taken is not None and taken.holder == "b"


def test_the_mutex_waits_for_its_holder_and_gives_up_in_time(holder: Holder) -> None:
    a, b = holder("a"), holder("b")
    with a.exclusive("mutex", wait=1):
        started = time.monotonic()
        with pytest.raises(TransientError) as refused, b.exclusive("mutex", wait=0.5):
            pass
        assert refused.value.reason == reasons.COORDINATION_BUSY
        assert time.monotonic() - started >= 0.5
    with b.exclusive("mutex", wait=1) as held:
        assert held.lease.holder == "b"


def test_the_mutex_keeps_two_threads_of_one_process_apart(holder: Holder) -> None:
    """One identity is one process: its Lease alone would let both of its threads in."""
    a = holder("a")
    inside: list[int] = []
    most = [0]
    lock = threading.Lock()

    def enter(index: int) -> None:
        with a.exclusive("mutex", wait=10):
            with lock:
                inside.append(index)
                most[0] = max(most[0], len(inside))
            time.sleep(0.3)
            with lock:
                inside.remove(index)

    threads = [threading.Thread(target=enter, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most[0] == 1


def test_a_mutex_taken_over_meanwhile_says_so_before_the_blocks_write(holder: Holder) -> None:
    a, b = holder("a", duration=1), holder("b", duration=1)
    with a.exclusive("mutex", wait=1) as held:
        held.check()  # still ours
        time.sleep(0.1)
        assert b.acquire("mutex", "mutex", "b", take=True) is not None  # taken from a
        deadline = time.monotonic() + 5
        while not held.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)  # a's next renewal finds it gone
        with pytest.raises(TransientError) as refused:
            still_held(held)
        assert refused.value.reason == reasons.COORDINATION_BUSY


def test_the_renewer_keeps_a_lease_past_its_duration_and_reports_a_loss(holder: Holder) -> None:
    a, b = holder("a", duration=1), holder("b", duration=1)
    lost: list[str] = []
    renewer = Renewer(a, lost=lost.append)
    taken = a.acquire("slot", "test", "env-1")
    assert taken is not None
    renewer.keep(taken)
    renewer.start()
    try:
        time.sleep(1.5)
        assert b.acquire("slot", "test", "env-2") is None  # still renewed by a
        assert b.acquire("slot", "test", "env-2", take=True) is not None
        deadline = time.monotonic() + 3
        while not lost and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        renewer.stop()
    assert lost == ["slot"]
    assert renewer.drop("slot") is None


def test_reservations_are_listed_live_and_expired_ones_removed(holder: Holder) -> None:
    a = Coordinated(holder("a"), wait=1, reservation_seconds=1)
    b = Coordinated(holder("b"), wait=1, reservation_seconds=30)
    a.reserve("place-1", "placement", "lb-1")
    b.reserve("place-2", "placement", "lb-2")
    assert [lease.held_for for lease in b.reservations("placement")] == ["lb-1", "lb-2"]
    time.sleep(1.2)
    assert [lease.name for lease in b.reservations("placement")] == ["place-2"]
    assert b.leases.get("place-1") is None  # the expired one is deleted
    a.reserve("place-2", "placement", "lb-2")  # whoever works on it now renews it
    held = b.leases.get("place-2")
    assert held is not None and held.holder == "a"
    b.unreserve("place-2")
    b.unreserve("place-2")  # already gone: harmless
    assert b.reservations("placement") == []
