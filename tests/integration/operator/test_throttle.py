"""The provisioning slots as Leases, shared by two operator processes on the local API server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.test_leases import coordination_api
from wpenv.leases import Leases
from wpenv.operator.throttle import SLOT_PURPOSE, LeasedSlots, slot_name

pytestmark = pytest.mark.e2e

Process = Callable[[str], LeasedSlots]


@pytest.fixture
def process(platform: dict[str, str], namespace: str) -> Process:
    """One operator process's slots (limit 2), as `identity`."""
    api = coordination_api(platform)

    def make(identity: str) -> LeasedSlots:
        return LeasedSlots(2, Leases(namespace, 30, identity=identity, api=api))

    return make


def _holders(slots: LeasedSlots) -> dict[str, str]:
    return {lease.name: lease.held_for for lease in slots.leases.list(SLOT_PURPOSE)
            if not lease.free()}


def test_the_limit_holds_across_processes(process: Process) -> None:
    a, b = process("a"), process("b")
    assert a.acquire("u1")
    assert b.acquire("u2")
    assert not b.acquire("u3")  # both slots are held, one by each process
    assert not a.acquire("u4")
    assert (a.held, b.held, b.in_use) == (1, 1, 2)
    assert b.position("u3") == 1 and b.waiting == 1
    assert _holders(a) == {slot_name(0): "u1", slot_name(1): "u2"}
    assert b.acquire("u2")  # a holder keeps its slot, pass after pass
    a.release("u1")
    assert b.acquire("u3")  # the freed slot goes to the other process's waiter
    assert not a.acquire("u4")
    assert _holders(a) == {slot_name(0): "u3", slot_name(1): "u2"}
    assert b.waiting == 0 and a.waiting == 1


def test_a_process_taking_over_an_environment_takes_over_its_slot(process: Process) -> None:
    """The shard's new leader must not wait for the old one's slot lease to expire."""
    old, other = process("old"), process("other")
    assert old.acquire("u1")
    assert other.acquire("u2")
    new = process("new")
    assert new.acquire("u1")  # the slot u1 held, not a third one
    assert _holders(new) == {slot_name(0): "u1", slot_name(1): "u2"}
    held = new.leases.get(slot_name(0))
    assert held is not None and held.holder == "new"
    old._lost(slot_name(0))  # what old's renewer reports once it sees the loss
    assert old.held == 0


def test_release_without_a_slot_makes_no_call_and_keeps_the_others(process: Process) -> None:
    a = process("a")
    assert a.acquire("u1")
    a.release("never-held")
    assert _holders(a) == {slot_name(0): "u1"}
