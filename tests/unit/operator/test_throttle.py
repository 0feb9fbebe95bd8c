"""Provisioning slots: at most N at once, FIFO for the rest, idempotent per holder."""

from __future__ import annotations

from wpenv.operator.throttle import ProvisionSlots


def test_limit_is_enforced_and_released_slots_go_to_the_first_waiter() -> None:
    slots = ProvisionSlots(2)
    assert slots.acquire("a")
    assert slots.acquire("b")
    assert not slots.acquire("c")
    assert not slots.acquire("d")
    assert slots.position("c") == 1
    assert slots.position("d") == 2
    slots.release("a")
    assert not slots.acquire("d")  # c was first
    assert slots.acquire("c")
    assert slots.in_use == 2
    assert slots.position("d") == 1


def test_a_holder_keeps_its_slot_across_passes() -> None:
    slots = ProvisionSlots(1)
    assert slots.acquire("a")
    assert slots.acquire("a")
    assert slots.in_use == 1
    slots.release("a")
    slots.release("a")
    assert slots.in_use == 0


def test_a_finished_provision_is_remembered_until_the_environment_is_gone() -> None:
    slots = ProvisionSlots(1)
    assert slots.acquire("a")
    assert not slots.acquire("b")
    slots.finish("a")
    assert slots.finished("a") and slots.in_use == 0
    assert slots.acquire("b"), "the slot went to the next in line"
    slots.release("a")
    assert slots.finished("a"), "releasing again does not forget it"
    slots.forget("a")
    assert not slots.finished("a")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_expected_wait_follows_the_holders_and_the_typical_hold() -> None:
    clock = Clock()
    slots = ProvisionSlots(2, clock=clock)
    assert slots.acquire("a") and slots.acquire("b")
    assert not slots.acquire("c")
    assert slots.expected_wait("c") is None, "no hold has ended yet: no estimate"
    clock.now += 10.0
    slots.finish("a")  # held 10 s
    assert slots.acquire("c")
    for uid in ("d", "e", "f"):
        assert not slots.acquire(uid)
    clock.now += 4.0  # b has held 14 s, c 4 s; a hold takes 10 s
    assert slots.expected_wait("d") == 0.0, "b is overdue: its slot may free any moment"
    assert slots.expected_wait("e") == 6.0, "c's slot, 10 s after c took it"
    assert slots.expected_wait("f") == 6.0, "b's slot again, a round later"
    assert slots.expected_wait("a") is None, "not waiting"


def test_the_typical_hold_moves_towards_the_latest() -> None:
    clock = Clock()
    slots = ProvisionSlots(1, clock=clock)
    for held in (10.0, 20.0):
        assert slots.acquire("x")
        clock.now += held
        slots.release("x")
    assert slots.acquire("y")
    assert not slots.acquire("z")
    assert slots.expected_wait("z") == 13.0, "0.3 x 20 + 0.7 x 10, all of it ahead"
