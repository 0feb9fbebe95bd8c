"""Handlers report themselves: controller-runtime counts, the inventory, log context."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import pytest
from prometheus_client import REGISTRY

from wpenv.operator import handlers, logs, observe
from wpenv.operator.app import App
from wpenv.operator.throttle import ProvisionSlots
from wpenv.settings import Settings

CONTROLLER = "test-controller"


def _sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


@observe.reconciler(CONTROLLER, ("Converging",))
def _handler(**kwargs: Any) -> None:
    logging.getLogger("wpenv.test").info("handling")
    mode = kwargs["mode"]
    if mode == "wait":
        raise kopf.TemporaryError("Converging", delay=1)
    if mode == "retry":
        raise kopf.TemporaryError("the dump did not verify", delay=5)
    if mode == "crash":
        raise RuntimeError("unexpected")


def _call(mode: str) -> None:
    meta = {"namespace": "shop", "name": "acme"}
    _handler(mode=mode, meta=meta, spec={"tenantId": "acme-ltd"})


def test_each_call_is_counted_by_how_it_ended_and_timed() -> None:
    before = {r: _sample("controller_runtime_reconcile_total", controller=CONTROLLER, result=r)
              for r in ("success", "requeue_after", "error")}
    timed = _sample("controller_runtime_reconcile_time_seconds_count", controller=CONTROLLER)
    _call("ok")
    with pytest.raises(kopf.TemporaryError):
        _call("wait")
    with pytest.raises(kopf.TemporaryError):
        _call("retry")
    with pytest.raises(RuntimeError):
        _call("crash")
    after = {r: _sample("controller_runtime_reconcile_total", controller=CONTROLLER, result=r)
             for r in before}
    assert {r: after[r] - before[r] for r in before} == {
        "success": 1, "requeue_after": 1, "error": 2}
    assert _sample("controller_runtime_reconcile_errors_total", controller=CONTROLLER) == (
        before["error"] + 2)
    assert _sample("controller_runtime_reconcile_time_seconds_count",
                   controller=CONTROLLER) == timed + 4


def test_every_line_logged_inside_a_handler_names_its_environment(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.handler.addFilter(logs.EnvironmentFields())
    with caplog.at_level(logging.INFO, logger="wpenv.test"):
        _call("ok")
        logging.getLogger("wpenv.test").info("outside any handler")
    inside, outside = caplog.records
    assert getattr(inside, "environment", None) == {
        "namespace": "shop", "name": "acme", "tenant": "acme-ltd"}
    assert not hasattr(outside, "environment")


def _body(uid: str, phase: str | None, generation: int = 1, **meta: Any) -> dict[str, Any]:
    status = {"phase": phase, "observedGeneration": 1} if phase else {}
    if phase == "Provisioning":
        status["provisioning"] = {"startedAt": "2026-12-01T10:00:00Z"}
    return {"metadata": {"namespace": "obs", "name": uid, "uid": uid,
                         "generation": generation, **meta},
            "spec": {"tenantId": uid}, "status": status}


def _phase(phase: str) -> float:
    return _sample("wpenv_environments", phase=phase)


def test_watch_events_keep_the_phase_gauge_exact() -> None:
    before = {p: _phase(p) for p in ("New", "Provisioning", "Active", "PendingDeprovision")}
    depth = _sample("workqueue_depth", name="wordpressenvironment")
    observe.watched(None, _body("obs-a", None))  # listed at start-up
    observe.watched("ADDED", _body("obs-b", "Provisioning"))
    assert _phase("New") == before["New"] + 1
    assert _phase("Provisioning") == before["Provisioning"] + 1
    assert _sample("workqueue_depth", name="wordpressenvironment") == depth + 2
    assert _sample("wpenv_provision_started_timestamp_seconds", namespace="obs",
                   name="obs-b") == 1_796_119_200  # 2026-12-01T10:00:00Z
    observe.watched("MODIFIED", _body("obs-a", "Active"))
    observe.watched("MODIFIED", _body("obs-b", "Active"))
    observe.watched("MODIFIED", _body("obs-b", "Active", generation=2))  # spec changed
    assert _phase("Active") == before["Active"] + 2
    assert _phase("New") == before["New"] and _phase("Provisioning") == before["Provisioning"]
    assert _sample("workqueue_depth", name="wordpressenvironment") == depth + 1
    observe.watched("MODIFIED", _body("obs-b", "PendingDeprovision",
                                      deletionTimestamp="2026-12-01T11:00:00Z"))
    assert observe.watched("DELETED", _body("obs-b", "Deprovisioned")) == "obs-b"
    observe.watched("DELETED", _body("obs-a", "Active"))
    assert {p: _phase(p) for p in before} == before
    assert _sample("workqueue_depth", name="wordpressenvironment") == depth


def test_an_object_gone_from_the_api_gives_back_its_place_in_the_queue() -> None:
    app = App(settings=Settings(), clients=None, slots=ProvisionSlots(1),  # type: ignore[arg-type]
              resources=[])
    assert app.slots.acquire("holder") and not app.slots.acquire("waiter")
    assert _sample("wpenv_provisions_queued") == 1
    memo = kopf.Memo(app=app)
    inventory: Any = handlers.inventory  # kopf's decorator types it for kopf's own calls
    inventory(type="DELETED", body=_body("waiter", None), memo=memo)
    assert _sample("wpenv_provisions_queued") == 0 and app.slots.position("waiter") == 0
    inventory(type="DELETED", body=_body("holder", "Provisioning"), memo=memo)
    assert _sample("wpenv_provisions_running") == 0
