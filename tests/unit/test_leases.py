"""The single-process coordination: no API call, but its threads still take turns."""

from __future__ import annotations

import threading
import time

import pytest

from wpenv import leases, reasons
from wpenv.errors import TransientError


def test_local_exclusive_lets_one_thread_of_the_process_in_at_a_time() -> None:
    local = leases.Local()
    inside, most, lock = [0], [0], threading.Lock()

    def enter() -> None:
        with local.exclusive("counting"):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=enter) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most[0] == 1


def test_a_thread_kept_out_too_long_gets_a_transient_error_naming_the_section() -> None:
    entered = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with leases.within_process("placing", 1):
            entered.set()
            leave.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert entered.wait(5)
        with pytest.raises(TransientError) as refused, leases.within_process("placing", 0.1):
            pass
        assert refused.value.reason == reasons.COORDINATION_BUSY
        assert "placing" in str(refused.value)
        with leases.within_process("another name", 0.1):
            pass  # other sections are not held up
    finally:
        leave.set()
        holder.join(5)


def test_still_held_has_nothing_to_check_without_a_mutex_lease() -> None:
    leases.still_held(None)
    mutex = leases.Mutex(leases.Lease(name="m", version="1", holder="me"))
    leases.still_held(mutex)
    mutex.lost.set()
    with pytest.raises(TransientError):
        leases.still_held(mutex)


def test_local_reservations_are_kept_in_memory_until_unreserved() -> None:
    """Environments provisioning at once in one process see each other's places."""
    local = leases.Local()
    local.reserve("wpenv-placement-b", "placement", '{"loadBalancerArn": "lb-1"}')
    local.reserve("wpenv-placement-a", "placement", '{"loadBalancerArn": "lb-2"}')
    local.reserve("wpenv-placement-a", "placement", '{"loadBalancerArn": "lb-1"}')  # renewed
    local.reserve("other", "something else", "x")
    found = local.reservations("placement")
    assert [lease.name for lease in found] == ["wpenv-placement-a", "wpenv-placement-b"]
    assert found[0].held_for == '{"loadBalancerArn": "lb-1"}'
    local.unreserve("wpenv-placement-a")
    local.unreserve("never reserved")
    assert [lease.name for lease in local.reservations("placement")] == ["wpenv-placement-b"]
