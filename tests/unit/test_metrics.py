"""The metrics' own rules: gauges counted from the inventory, durations against targets."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY, CollectorRegistry

from wpenv import metrics
from wpenv.metrics import Inventory, Seen


def _seen(name: str, phase: str, *, pending: bool = False, started: float | None = None) -> Seen:
    return Seen(namespace="shop", name=name, tenant=f"t-{name}", phase=phase, pending=pending,
                provision_started=started)


def _registry() -> tuple[Inventory, CollectorRegistry]:
    inventory, registry = Inventory(), CollectorRegistry()
    registry.register(inventory)
    return inventory, registry


def _phase(registry: CollectorRegistry, phase: str) -> float | None:
    return registry.get_sample_value("wpenv_environments", {"phase": phase})


def test_the_phase_gauge_follows_environments_that_come_change_and_go() -> None:
    inventory, registry = _registry()
    assert _phase(registry, "Active") == 0 and _phase(registry, "Failed") == 0, "zeros shown"
    inventory.saw("a", _seen("a", "Provisioning", pending=True, started=100.0))
    inventory.saw("b", _seen("b", "Active"))
    inventory.saw("c", _seen("c", "Active"))
    assert (_phase(registry, "Provisioning"), _phase(registry, "Active")) == (1, 2)
    inventory.saw("a", _seen("a", "Active"))  # provisioned: a phase change, not a new one
    inventory.saw("b", _seen("b", "Active"))  # an event that changed nothing else
    assert (_phase(registry, "Provisioning"), _phase(registry, "Active")) == (0, 3)
    inventory.saw("c", _seen("c", "PendingDeprovision", pending=True))
    inventory.gone("c")
    inventory.gone("c")  # a second deletion event, or one for an object never seen
    inventory.gone("never-seen")
    assert (_phase(registry, "Active"), _phase(registry, "PendingDeprovision")) == (2, 0)
    assert sum(_phase(registry, p) or 0 for p in [metrics.NO_PHASE, "Active", "Failed"]) == 2


def test_an_environment_deleted_while_the_watch_was_away_is_forgotten_by_the_audit() -> None:
    inventory, registry = _registry()
    inventory.saw("kept", _seen("kept", "Active"))
    inventory.saw("deleted", _seen("deleted", "Active"))  # its deletion event never comes
    listed_at = time.time() + 1  # the list started after both were seen
    assert inventory.retain({"kept"}, listed_at) == 1
    assert _phase(registry, "Active") == 1
    assert inventory.tenant_of("deleted") == "t-deleted", "gone, as a deletion makes it"
    # One seen after the list started is not the list's to judge.
    inventory.saw("new", _seen("new", "Active"))
    assert inventory.retain({"kept"}, listed_at - 10) == 0
    assert _phase(registry, "Active") == 2


def test_the_work_queue_and_the_provisions_under_way_come_from_the_same_snapshot() -> None:
    inventory, registry = _registry()
    inventory.saw("a", _seen("a", "Provisioning", pending=True, started=100.0))
    inventory.saw("b", _seen("b", metrics.NO_PHASE, pending=True))
    inventory.saw("c", _seen("c", "Active"))
    assert registry.get_sample_value("workqueue_depth", {"name": "wordpressenvironment"}) == 2
    started = {"namespace": "shop", "name": "a"}
    assert registry.get_sample_value("wpenv_provision_started_timestamp_seconds", started) == 100
    inventory.saw("a", _seen("a", "Active"))
    assert registry.get_sample_value("wpenv_provision_started_timestamp_seconds", started) is None
    assert registry.get_sample_value("workqueue_depth", {"name": "wordpressenvironment"}) == 1
    assert inventory.tenant_of("b") == "t-b" and inventory.tenant_of("x") is None
    inventory.gone("b")
    assert inventory.tenant_of("b") == "t-b", "kopf's last line about it comes after"
    for n in range(metrics.RECENTLY_GONE):
        inventory.saw(f"other-{n}", _seen(f"other-{n}", "Active"))
        inventory.gone(f"other-{n}")
    assert inventory.tenant_of("b") is None, "only the last few are remembered"


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_duration_past_its_hld_target_counts_a_miss() -> None:
    misses = _count("wpenv_sla_misses_total", operation="suspend")
    observed = _count("wpenv_suspend_duration_seconds_count")
    metrics.observe_duration("suspend", 119.0)
    assert _count("wpenv_sla_misses_total", operation="suspend") == misses
    metrics.observe_duration("suspend", 121.0)
    assert _count("wpenv_sla_misses_total", operation="suspend") == misses + 1
    assert _count("wpenv_suspend_duration_seconds_count") == observed + 2
    target = {"le": "120.0"}
    assert REGISTRY.get_sample_value("wpenv_suspend_duration_seconds_bucket", target) is not None
    assert set(metrics.TARGETS) == set(metrics.DURATIONS) == {
        "provision", "deprovision", "suspend", "resume"}


def test_capacity_gauges_are_ratios_of_a_fresh_count() -> None:
    metrics.set_user_pools(48, 60)
    assert _count("wpenv_user_pool_quota_used_ratio") == 0.8
    assert (_count("wpenv_user_pools_in_use"), _count("wpenv_user_pool_quota")) == (48, 60)
    metrics.set_lb_pool_capacity("alb-1", "rules", 90, 100)
    metrics.set_lb_pool_capacity("alb-1", "rules", 45, 100)
    assert _count("wpenv_lb_pool_capacity_used_ratio", load_balancer="alb-1", quota="rules") == 0.45


def test_the_provisioning_gauges_read_the_limiter_at_each_scrape() -> None:
    held = {"running": 3, "queued": 1}
    metrics.follow_slots(lambda: held["running"], lambda: held["queued"])
    assert (_count("wpenv_provisions_running"), _count("wpenv_provisions_queued")) == (3, 1)
    held.update(running=0, queued=0)
    assert (_count("wpenv_provisions_running"), _count("wpenv_provisions_queued")) == (0, 0)
