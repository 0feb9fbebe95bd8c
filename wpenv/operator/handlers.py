"""kopf handlers: thin adapters from Kubernetes events to the engine.

Each handler reads what it needs from the event, calls the engine, and turns its Outcome
into a status patch, Events and a requeue. Policy lives in wpenv.engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
import prometheus_client

from wpenv import engine
from wpenv.api.models import GROUP, PLURAL, VERSION, Phase
from wpenv.aws import Clients
from wpenv.operator import kube, metrics
from wpenv.operator import status as st
from wpenv.operator.throttle import ProvisionSlots
from wpenv.plan import url_for
from wpenv.reconcilers.base import Resource
from wpenv.reconcilers.listener_rule import listener_port
from wpenv.settings import Settings

FINALIZER = f"{GROUP}/finalizer"
PROVISION_TARGET_SECONDS = 15 * 60  # HLD 5.1
QUEUE_POLL_SECONDS = 5.0
log = logging.getLogger(__name__)


@dataclass
class App:
    """What every handler shares: settings, AWS clients, the provisioning slots."""

    settings: Settings
    clients: Clients
    slots: ProvisionSlots
    resources: list[Resource]
    listener_ports: dict[str, int] = field(default_factory=dict)

    def port_of(self, listener_arn: str) -> int:
        """A listener's port, asked once: listeners of the shared ALB do not move."""
        if listener_arn not in self.listener_ports:
            self.listener_ports[listener_arn] = listener_port(self.clients, listener_arn)
        return self.listener_ports[listener_arn]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Keep kopf's bookkeeping in our annotations, and name the finalizer after our group.

    Annotations rather than status.kopf: the status schema is strict (pruned), and the
    status belongs to what the operator observed, not to its handler progress. kopf's own
    log-to-Event posting is off: Events are ours, one per step, never a stack trace.
    """
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.CRITICAL
    settings.watching.server_timeout = 300
    kube.load_config()
    config = Settings()
    memo.app = App(
        settings=config,
        clients=Clients(config),
        slots=ProvisionSlots(config.max_concurrent_provisions),
        resources=engine.default_resources(),
    )
    prometheus_client.start_http_server(config.metrics_port)


def accept(status: dict[str, Any], generation: int | None) -> dict[str, Any]:
    """A new manifest: record that it was seen and is waiting to be provisioned."""
    if status.get("phase") not in (None, Phase.PENDING_PROVISIONING.value):
        return {}
    patch = st.status_patch(
        status,
        generation,
        phase=Phase.PENDING_PROVISIONING,
        conditions=[
            st.Cond(
                st.READY, st.FALSE, "PendingProvisioning", "Accepted; waiting to be provisioned"
            )
        ],
    )
    if patch and not (status.get("provisioning") or {}).get("queuedAt"):
        patch["provisioning"] = {"queuedAt": st.now_rfc3339()}
    return patch


def _post(body: kopf.Body, events: list[engine.Event]) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    retry: int,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Converge the environment toward its spec; requeue until it is Active or Failed."""
    app: App = memo.app
    current = dict(status)
    generation = meta.get("generation")
    uid = str(meta.get("uid"))
    phase = current.get("phase")

    if phase == Phase.FAILED.value and current.get("observedGeneration") == generation:
        return  # Failed stays Failed until someone changes the spec.

    first = accept(current, generation)
    current.update(first)
    was_active = bool((current.get("provisioning") or {}).get("finishedAt"))

    if not was_active and not app.slots.acquire(uid):
        place = app.slots.position(uid)
        waiting = st.status_patch(
            current,
            generation,
            phase=Phase.PENDING_PROVISIONING,
            conditions=[
                st.Cond(
                    st.READY,
                    st.FALSE,
                    "Queued",
                    f"Waiting for a provisioning slot: {app.slots.in_use} of "
                    f"{app.slots.limit} in use, number {place} in the queue",
                )
            ],
        )
        patch.status.update({**first, **waiting})
        metrics.PROVISIONS_QUEUED.set(len(app.slots._waiting))
        raise kopf.TemporaryError("Queued for a provisioning slot", delay=QUEUE_POLL_SECONDS)
    metrics.PROVISIONS_RUNNING.set(app.slots.in_use)

    times = dict(current.get("provisioning") or {})
    if not was_active and not times.get("startedAt"):
        times["startedAt"] = st.now_rfc3339()
        kopf.event(body, type="Normal", reason="Provisioning", message="Provisioning started")

    ctx = engine.make_context(
        meta["namespace"],
        meta["name"],
        dict(spec),
        settings=app.settings,
        clients=app.clients,
        ids=current.get("resources") or {},
        record=kube.resource_recorder(meta["namespace"], meta["name"]),
    )
    outcome = engine.converge(ctx, app.resources, attempt=retry, may_roll_back=not was_active)
    _post(body, outcome.events)

    if outcome.failure is not None and not was_active:
        new_phase = Phase.FAILED
    elif outcome.ready:
        new_phase = Phase.SUSPENDED if ctx.spec.suspended else Phase.ACTIVE
    elif was_active:
        new_phase = Phase(phase) if phase else Phase.ACTIVE
    else:
        new_phase = Phase.PROVISIONING

    if outcome.ready and not was_active:
        finished = datetime.now(UTC)
        started = datetime.fromisoformat(times["startedAt"].replace("Z", "+00:00"))
        seconds = round((finished - started).total_seconds(), 1)
        times.update(
            finishedAt=st.now_rfc3339(),
            durationSeconds=seconds,
            withinTarget=seconds < PROVISION_TARGET_SECONDS,
        )
        metrics.PROVISION_SECONDS.observe(seconds)
        kopf.event(body, type="Normal", reason="Active", message=f"Active after {seconds}s")

    fields: dict[str, Any] = {
        "selector": engine.selector(ctx),
        "provisioning": times,
    }
    if "runningCount" in outcome.facts:
        fields["replicas"] = outcome.facts["runningCount"]
        fields["readyReplicas"] = outcome.facts.get("healthyTargets", 0)
    if ctx.ids.get("listenerArn"):
        fields["url"] = url_for(ctx.spec, app.settings, app.port_of(ctx.ids["listenerArn"]))
    changes = st.status_patch(
        current, generation, phase=new_phase, conditions=outcome.conditions, **fields
    )
    patch.status.update({**first, **changes})

    if new_phase not in (Phase.PROVISIONING, Phase.PENDING_PROVISIONING):
        app.slots.release(uid)
    result = "ready" if outcome.ready else "failed" if outcome.failure else "progressing"
    metrics.PASSES.labels(result).inc()
    if outcome.failure is not None:
        if was_active:
            raise kopf.TemporaryError(str(outcome.failure), delay=outcome.retry_after or 60)
        raise kopf.PermanentError(str(outcome.failure))
    if outcome.retry_after is not None:
        raise kopf.TemporaryError("Converging", delay=outcome.retry_after)


@kopf.on.delete(GROUP, VERSION, PLURAL)
def on_delete(body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """Release the finalizer, leaving every resource in place (tagged retained).

    Archiving before removal is not implemented yet; until it is, deleting a manifest
    never destroys data: the resources stay, and an Event says so.
    """
    app: App = memo.app
    app.slots.release(str(meta.get("uid")))
    kopf.event(
        body,
        type="Warning",
        reason="Retained",
        message="AWS resources and the database were left in place (archiving before "
        "removal is not available yet)",
    )
    log.info("Released %s/%s", meta.get("namespace"), meta.get("name"))


@kopf.on.probe(id="ready")
def probe(**_: Any) -> bool:
    """The liveness endpoint answers only while the event loop runs handlers."""
    return True
