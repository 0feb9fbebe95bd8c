"""kopf handlers: thin adapters from Kubernetes events to the engine.

Each handler reads what it needs from the event, calls the engine, and turns its Outcome
into a status patch, Events and a requeue. Policy lives in wpenv.engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import kopf
import kubernetes
import prometheus_client

from wpenv import conditions as st
from wpenv import engine, metrics
from wpenv.api.models import GROUP, PLURAL, VERSION, DeletionPolicy, Phase
from wpenv.aws import Clients
from wpenv.deprovision import STEPS, Archive, Deprovisioner
from wpenv.operator import kube
from wpenv.operator.app import App, observed_fields
from wpenv.operator.decisions import (
    DEPROVISION,
    REPAIRS,
    TENANT_IN_USE,
    accept,
    failure_of,
    live_handler,
    next_phase,
    pass_conditions,
    tenant_holder,
    transitions,
    unhandled,
)
from wpenv.operator.throttle import ProvisionSlots
from wpenv.orphans import run_scan
from wpenv.plan import TAG_RETAINED, archive_prefix
from wpenv.retain import retain
from wpenv.settings import Settings

FINALIZER = f"{GROUP}/finalizer"
ORPHAN_SCAN_FIRST_DELAY = 300.0
# How long a spec generation may wait with no handler on it before `catch_up` takes it.
CATCH_UP_SECONDS = 15.0
# Read once at import: kopf needs the timer's interval when the handler is registered.
DRIFT_INTERVAL = Settings().drift_interval_seconds
PROVISION_TARGET_SECONDS = 15 * 60  # HLD 5.1
# Requeues that are how a pass waits for AWS, not failures (see operator.logs).
CONVERGING = "Converging"
QUEUED = "Queued for a provisioning slot"
DEFERRED_SUSPEND = "Applying the deferred suspend"
ROUTINE_REQUEUES = (CONVERGING, QUEUED, DEFERRED_SUSPEND)
QUEUE_POLL_SECONDS = 5.0
log = logging.getLogger(__name__)


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
        raise kopf.TemporaryError(QUEUED, delay=QUEUE_POLL_SECONDS)
    metrics.PROVISIONS_RUNNING.set(app.slots.in_use)

    times = dict(current.get("provisioning") or {})
    if not was_active and not times.get("startedAt"):
        times["startedAt"] = st.now_rfc3339()
        kopf.event(body, type="Normal", reason="Provisioning", message="Provisioning started")

    wanted = dict(spec)
    deferred = bool(wanted.get("suspended")) and not was_active
    if deferred:
        wanted["suspended"] = False  # provision serving first, suspend once Active
    ctx = app.context(namespace, name, wanted, current)
    with app.lock_for(uid):
        outcome = engine.converge(
            ctx, app.resources, attempt=app.streak(uid), may_roll_back=not was_active
        )
    app.streak(uid, outcome)

    suspended = bool(spec.get("suspended"))
    new_phase = next_phase(outcome, was_active=was_active, suspended=suspended, phase=phase)
    conditions = pass_conditions(outcome, suspended=suspended, was_active=was_active,
                                 status=current)
    _post(body, outcome.events + transitions(app.said, uid, current, conditions, ctx))

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
        raise kopf.TemporaryError(CONVERGING, delay=outcome.retry_after)
    if deferred and outcome.ready:
        raise kopf.TemporaryError(DEFERRED_SUSPEND, delay=0.1)


@kopf.timer(GROUP, VERSION, PLURAL, interval=CATCH_UP_SECONDS, initial_delay=CATCH_UP_SECONDS)
async def catch_up(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    """Make the pass that no handler will make (see `unhandled`).

    Cheap when there is nothing to do (no API call, no thread): it only compares the
    generation with the status and kopf's progress records.
    """
    app: App = memo.app
    if meta.get("deletionTimestamp") or app.lock_for(str(meta.get("uid"))).locked():
        return
    stuck = unhandled(
        meta.get("annotations") or {}, dict(status), meta.get("generation"),
        created=meta.get("creationTimestamp"), now=datetime.now(UTC), grace=CATCH_UP_SECONDS,
    )
    if not stuck:
        return
    log.info("Generation %s of %s/%s has no handler on it; reconciling it now",
             meta.get("generation"), meta.get("namespace"), meta.get("name"))
    # A requeue or a failure: the status says why; the next tick or spec change comes back.
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
        await asyncio.to_thread(
            reconcile, body=body, meta=meta, spec=spec, status=status, patch=patch, memo=memo,
            **kwargs,
        )


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
    if live_handler(meta.get("annotations") or {}, now=datetime.now(UTC), grace=CATCH_UP_SECONDS):
        return  # the handler owns the status until it is done (catch_up covers a stuck one)
    lock = app.lock_for(str(meta.get("uid")))
    if not lock.acquire(blocking=False):
        return
    try:
        ctx = app.context(meta["namespace"], meta["name"], dict(spec), current)
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
    conditions = pass_conditions(outcome, suspended=suspended, was_active=True, status=current)
    warnings = [e for e in outcome.events if e.type == "Warning"]
    ready_before = st.find(current.get("conditions") or [], st.READY) or {}
    reason = outcome.failure.reason if outcome.failure else None
    if warnings and ready_before.get("reason") != reason:
        _post(body, warnings)  # a persisting failure is reported once, not every pass
    _post(body, transitions(app.said, str(meta.get("uid")), current, conditions, ctx))
    phase = next_phase(outcome, was_active=True, suspended=suspended, phase=current.get("phase"))
    changes = st.status_patch(
        current, generation, phase=phase, conditions=conditions,
        **observed_fields(app, ctx, outcome),
    )
    if changes:
        patch.status.update(changes)


@kopf.on.delete(GROUP, VERSION, PLURAL)
def on_delete(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    retry: int,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    """The finalizer: archive and verify, then remove everything (or retain it all).

    Returning releases the finalizer; raising TemporaryError keeps the object in
    PendingDeprovision and retries with backoff, having removed nothing that holds data
    unless its archive was verified.
    """
    app: App = memo.app
    namespace, name = meta["namespace"], meta["name"]
    uid = str(meta.get("uid"))
    app.slots.release(uid)
    current = dict(status)
    index: kopf.Index[Any, Any] = kwargs["tenants"]
    tenant = str(spec.get("tenantId"))
    holder = tenant_holder(index, tenant, (namespace, name))
    if holder is not None:
        kopf.event(body, type="Normal", reason="NothingToRemove",
                   message=f"tenantId {tenant} belongs to {holder}; this manifest owns nothing")
        app.forget(uid)
        return
    ctx = app.context(namespace, name, dict(spec), current)
    if ctx.spec.deletion_policy == DeletionPolicy.RETAIN.value:
        tagged = retain(ctx)
        kopf.event(
            body, type="Normal", reason="Retained",
            message=f"deletionPolicy Retain: {len(tagged)} AWS resources tagged "
            f"{TAG_RETAINED}=true and left in place, with database {ctx.names.database} "
            "and the tenant's files",
        )
        app.forget(uid)
        return

    write = kube.status_writer(namespace, name)
    location = (current.get("archive") or {}).get("location")
    if location:
        prefix = location.removeprefix(f"s3://{app.settings.archive_bucket}/").rstrip("/")
    else:
        prefix = archive_prefix(app.settings, namespace, name, datetime.now(UTC))
    archive = Archive(bucket=app.settings.archive_bucket, prefix=prefix)
    if current.get("phase") != Phase.PENDING_DEPROVISION.value or not location:
        start = st.status_patch(
            current, meta.get("generation"), phase=Phase.PENDING_DEPROVISION,
            conditions=[
                st.Cond(st.READY, st.FALSE, "Deprovisioning", "Archiving, then removing"),
                st.Cond(DEPROVISION, st.FALSE, "InProgress", f"Archiving to {archive.uri()}"),
            ],
            archive={"location": archive.uri()},
        )
        write(start)
        current.update(start)
        kopf.event(body, type="Normal", reason="Deprovisioning",
                   message=f"Deprovisioning started; archiving to {archive.uri()}")

    def report(step: int, message: str) -> None:
        kopf.event(body, type="Normal", reason="Deprovisioning",
                   message=f"Step {step}/{STEPS}: {message}")

    started = datetime.now(UTC)
    try:
        with app.lock_for(uid):
            Deprovisioner(ctx, app.resources, archive, report).run()
    except Exception as exc:
        reason, message = failure_of(exc)
        log.warning("Deprovisioning %s/%s must be retried: %s", namespace, name, message)
        failed = st.status_patch(
            current, meta.get("generation"), phase=Phase.PENDING_DEPROVISION,
            conditions=[
                st.Cond(DEPROVISION, st.FALSE, reason, f"{message}; nothing holding data "
                        "was removed without a verified archive; retrying"),
            ],
        )
        if failed:
            write(failed)
        kopf.event(body, type="Warning", reason=reason, message=message)
        raise kopf.TemporaryError(message, delay=engine.backoff(retry, app.settings)) from None

    locations = {"location": archive.uri(), **archive.locations}
    seconds = round((datetime.now(UTC) - started).total_seconds(), 1)
    metrics.DEPROVISION_SECONDS.observe(seconds)
    done = st.status_patch(
        current, meta.get("generation"), phase=Phase.DEPROVISIONED,
        conditions=[
            st.Cond(st.READY, st.FALSE, "Deprovisioned", "Everything was archived and removed"),
            st.Cond(DEPROVISION, st.TRUE, "Completed", f"Archived to {archive.uri()}"),
        ],
        archive=locations,
    )
    write(done)  # the last phase written before kopf removes the finalizer
    where = ", ".join(f"{k} {v}" for k, v in archive.locations.items())
    kopf.event(body, type="Normal", reason="Deprovisioned",
               message=f"Archived and removed in {seconds}s; {where or 'nothing to archive'}")
    app.forget(uid)


@kopf.on.startup()
async def orphan_scans(memo: kopf.Memo, **_: Any) -> None:
    """Start the periodic orphan scan (HLD 5.4) beside the handlers.

    Not a per-object timer: it compares the whole account with every manifest. The first
    scan runs a few minutes after start (so a restart loop cannot hammer AWS), then every
    `orphan_scan_interval_seconds` (daily by default). Results go to the
    `wpenv_orphaned_resources` gauge and to one log line per orphan.
    """
    app: App = memo.app
    memo.orphan_task = asyncio.create_task(_scan_forever(app))


async def _scan_forever(app: App) -> None:
    interval = app.settings.orphan_scan_interval_seconds
    await asyncio.sleep(min(interval, ORPHAN_SCAN_FIRST_DELAY))
    api = kubernetes.client.CustomObjectsApi()
    while True:
        try:
            await asyncio.to_thread(run_scan, app.settings, app.clients, api)
        except Exception as exc:  # the next scan may work; never take the operator down
            log.warning("orphan scan failed: %s", engine.classify(exc))
        await asyncio.sleep(interval)


@kopf.on.cleanup()
async def stop_orphan_scans(memo: kopf.Memo, **_: Any) -> None:
    """Stop the scan task with the operator."""
    task = getattr(memo, "orphan_task", None)
    if task is not None:
        task.cancel()


@kopf.on.probe(id="ready")
def probe(**_: Any) -> bool:
    """The liveness endpoint answers only while the event loop runs handlers."""
    return True
