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
