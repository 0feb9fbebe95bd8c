"""kopf handlers: thin adapters from Kubernetes events to the engine.

Each handler reads what it needs from the event, calls the engine, and turns its Outcome
into a status patch, Events and a requeue. Policy lives in wpenv.engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
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
from wpenv.reconcilers.base import Context, Resource
from wpenv.reconcilers.listener_rule import listener_port
from wpenv.settings import Settings

FINALIZER = f"{GROUP}/finalizer"
SUSPENDED = "Suspended"
SUSPENDED_MESSAGE = "Scaled to zero as the spec asks (the listener rule is removed if configured)"
TENANT_IN_USE = "TenantIdInUse"
# Engine Events that mean a pass changed something.
REPAIRS = ("Created", "Updated", "Removed")
# Read once at import: kopf needs the timer's interval when the handler is registered.
DRIFT_INTERVAL = Settings().drift_interval_seconds
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
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def lock_for(self, uid: str) -> threading.Lock:
        """One lock per environment: the drift check never races a reconcile pass."""
        with self._locks_guard:
            return self.locks.setdefault(uid, threading.Lock())

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


@kopf.index(GROUP, VERSION, PLURAL)
def tenants(
    namespace: str | None, name: str, spec: kopf.Spec, meta: kopf.Meta, **_: Any
) -> Any:
    """Every environment by tenantId, kept in memory by kopf (no API call to consult it).

    AWS and MySQL names derive from the tenant id, so two manifests naming one tenant would
    share (and fight over, and on deletion destroy) the same resources: the older one wins.
    """
    return {spec.get("tenantId"): (str(meta.get("creationTimestamp") or ""), namespace, name)}


def tenant_holder(index: kopf.Index[Any, Any], tenant: str, me: tuple[str, str]) -> str | None:
    """`namespace/name` of an older environment with the same tenant id, else None."""
    try:
        holders = sorted(index[tenant])
    except KeyError:
        return None
    for _created, namespace, name in holders:
        return None if (namespace, name) == me else f"{namespace}/{name}"
    return None


def suspend_condition(
    spec_suspended: bool, was_active: bool, ready: bool, status: Mapping[str, Any]
) -> st.Cond | None:
    """The Suspended condition (HLD 4.2: suspend applies to an Active environment only)."""
    if spec_suspended and not was_active:
        return st.Cond(
            SUSPENDED, st.FALSE, "Deferred",
            "Suspend was asked for while provisioning; it is applied once the environment "
            "is Active",
        )
    if spec_suspended:
        if ready:
            return st.Cond(SUSPENDED, st.TRUE, "Suspended", SUSPENDED_MESSAGE)
        return st.Cond(SUSPENDED, st.FALSE, "Suspending", "Scaling the service to zero")
    previous = st.find(status.get("conditions") or [], SUSPENDED)
    if previous is None:
        return None
    if ready:
        return st.Cond(SUSPENDED, st.FALSE, "Resumed", "Serving again")
    return st.Cond(SUSPENDED, st.FALSE, "Resuming", "Starting the service's tasks again")


def next_phase(
    outcome: engine.Outcome, *, was_active: bool, suspended: bool, phase: str | None
) -> Phase:
    """The HLD state after a pass: Active/Suspended once converged, else where it was."""
    if outcome.failure is not None and not was_active:
        return Phase.FAILED
    if outcome.ready and was_active:
        return Phase.SUSPENDED if suspended else Phase.ACTIVE
    if outcome.ready:
        return Phase.ACTIVE  # a deferred suspend follows in the next pass
    if was_active:
        return Phase(phase) if phase in {p.value for p in Phase} else Phase.ACTIVE
    return Phase.PROVISIONING


def observed_fields(app: App, ctx: Context, outcome: engine.Outcome) -> dict[str, Any]:
    """Status fields that mirror what AWS reports (replicas, URL, selector)."""
    fields: dict[str, Any] = {"selector": engine.selector(ctx)}
    if "runningCount" in outcome.facts:
        fields["replicas"] = outcome.facts["runningCount"]
        fields["readyReplicas"] = outcome.facts.get("healthyTargets", 0)
    if ctx.ids.get("listenerArn"):
        fields["url"] = url_for(ctx.spec, app.settings, app.port_of(ctx.ids["listenerArn"]))
    return fields


def _transitions(
    status: Mapping[str, Any], conditions: list[st.Cond]
) -> list[engine.Event]:
    """Warning Events for conditions that just turned bad (one Event, not one per pass)."""
    events = []
    for cond in conditions:
        if cond.type == engine.ROLLOUT and cond.reason == "RolledBack":
            previous = st.find(status.get("conditions") or [], engine.ROLLOUT)
            if previous is None or previous.get("reason") != "RolledBack":
                events.append(engine.Event("Warning", "RolledBack", cond.message))
    return events


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
    **kwargs: Any,
) -> None:
    """Converge the environment toward its spec; requeue until it is Active or Failed."""
    app: App = memo.app
    index: kopf.Index[Any, Any] = kwargs["tenants"]  # kopf passes indices by name
    current = dict(status)
    generation = meta.get("generation")
    uid = str(meta.get("uid"))
    phase = current.get("phase")
    namespace, name = meta["namespace"], meta["name"]

    if phase == Phase.FAILED.value and current.get("observedGeneration") == generation:
        return  # Failed stays Failed until someone changes the spec.

    first = accept(current, generation)
    current.update(first)
    was_active = bool((current.get("provisioning") or {}).get("finishedAt"))

    tenant = str(spec.get("tenantId"))
    holder = None if was_active else tenant_holder(index, tenant, (namespace, name))
    if holder is not None:
        message = (
            f"tenantId {tenant} belongs to {holder}; each tenant has one "
            "environment (its AWS resources and database are named after the tenant)"
        )
        failed = st.status_patch(
            current, generation, phase=Phase.FAILED,
            conditions=[st.Cond(st.READY, st.FALSE, TENANT_IN_USE, message)],
        )
        patch.status.update({**first, **failed})
        kopf.event(body, type="Warning", reason=TENANT_IN_USE, message=message)
        raise kopf.PermanentError(message)

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

    wanted = dict(spec)
    deferred = bool(wanted.get("suspended")) and not was_active
    if deferred:
        wanted["suspended"] = False  # provision serving first, suspend once Active
    ctx = engine.make_context(
        namespace, name, wanted,
        settings=app.settings,
        clients=app.clients,
        ids=current.get("resources") or {},
        record=kube.resource_recorder(namespace, name),
    )
    with app.lock_for(uid):
        outcome = engine.converge(ctx, app.resources, attempt=retry, may_roll_back=not was_active)

    suspended = bool(spec.get("suspended"))
    new_phase = next_phase(outcome, was_active=was_active, suspended=suspended, phase=phase)
    conditions = list(outcome.conditions)
    rollout = engine.rollout_condition(outcome.facts)
    if rollout is not None:
        conditions.append(rollout)
    suspend = suspend_condition(suspended, was_active, outcome.ready, current)
    if suspend is not None:
        conditions.append(suspend)
    if outcome.ready and suspended and was_active:
        conditions.append(st.Cond(st.READY, st.TRUE, "Suspended", SUSPENDED_MESSAGE))
    _post(body, outcome.events + _transitions(current, conditions))

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

    fields = {**observed_fields(app, ctx, outcome), "provisioning": times}
    changes = st.status_patch(current, generation, phase=new_phase, conditions=conditions, **fields)
    patch.status.update({**first, **changes})

    if new_phase not in (Phase.PROVISIONING, Phase.PENDING_PROVISIONING):
        app.slots.release(uid)
    result = "ready" if outcome.ready else "failed" if outcome.failure else "progressing"
    metrics.PASSES.labels(result).inc()
    if outcome.failure is not None:
        # Nothing more this generation can do: a changed spec (or the drift check of an
        # Active environment) is the next chance.
        raise kopf.PermanentError(str(outcome.failure))
    if outcome.retry_after is not None:
        raise kopf.TemporaryError("Converging", delay=outcome.retry_after)
    if deferred and outcome.ready:
        raise kopf.TemporaryError("Applying the deferred suspend", delay=0.1)


@kopf.timer(GROUP, VERSION, PLURAL, interval=DRIFT_INTERVAL, initial_delay=DRIFT_INTERVAL)
def drift(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Repair what someone changed by hand; an idle pass makes no write at all.

    Runs only for a settled environment (Active or Suspended, status for the current
    generation, not being deleted) and never while a change is being reconciled.
    """
    app: App = memo.app
    current = dict(status)
    generation = meta.get("generation")
    settled = current.get("phase") in (Phase.ACTIVE.value, Phase.SUSPENDED.value)
    if not settled or meta.get("deletionTimestamp"):
        return
    if current.get("observedGeneration") != generation:
        return
    lock = app.lock_for(str(meta.get("uid")))
    if not lock.acquire(blocking=False):
        return
    try:
        ctx = engine.make_context(
            meta["namespace"], meta["name"], dict(spec),
            settings=app.settings,
            clients=app.clients,
            ids=current.get("resources") or {},
            record=kube.resource_recorder(meta["namespace"], meta["name"]),
        )
        outcome = engine.converge(ctx, app.resources, may_roll_back=False)
    finally:
        lock.release()
    metrics.DRIFT_PASSES.inc()
    repairs = [e.message for e in outcome.events if e.reason in REPAIRS]
    if repairs:
        metrics.DRIFT_CORRECTIONS.inc(len(repairs))
        kopf.event(body, type="Normal", reason="DriftCorrected", message="; ".join(repairs))
        log.info("Drift corrected in %s/%s: %s", meta["namespace"], meta["name"], repairs)
    suspended = bool(spec.get("suspended"))
    conditions = list(outcome.conditions)
    rollout = engine.rollout_condition(outcome.facts)
    if rollout is not None:
        conditions.append(rollout)
    if outcome.ready and suspended:
        conditions.append(st.Cond(st.READY, st.TRUE, "Suspended", SUSPENDED_MESSAGE))
    warnings = [e for e in outcome.events if e.type == "Warning"]
    ready_before = st.find(current.get("conditions") or [], st.READY) or {}
    reason = outcome.failure.reason if outcome.failure else None
    if warnings and ready_before.get("reason") != reason:
        _post(body, warnings)  # a persisting failure is reported once, not every pass
    _post(body, _transitions(current, conditions))
    phase = next_phase(outcome, was_active=True, suspended=suspended, phase=current.get("phase"))
    changes = st.status_patch(
        current, generation, phase=phase, conditions=conditions,
        **observed_fields(app, ctx, outcome),
    )
    if changes:
        patch.status.update(changes)


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
