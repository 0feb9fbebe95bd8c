"""What each kopf handler does, as functions that return a Result and never call kopf.

A handler reads its event into an `Env`, calls one function here and applies the Result
(`handlers._apply`). Kept apart from kopf so each path (queued, tenant in use, provisioned,
drift repaired, archived...) can be tested directly (tests/unit/operator/test_usecases.py);
the pure rules they build on are in `decisions`. Each call into the layers below (the
pass's Context, the converge pass, deprovisioning, retain, the orphan scan) stands in one
place here, so a change of those layers has one call site to adapt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from wpenv import conditions as st
from wpenv import crashpoints, engine, kube, metrics, reasons
from wpenv.api.models import DeletionPolicy, Phase
from wpenv.deprovision import STEPS, Archive, Deprovisioner
from wpenv.operator.app import App, observed_fields
from wpenv.operator.decisions import (
    DEPROVISION,
    REPAIRS,
    ROUTES,
    RouteClaim,
    accept,
    failure_of,
    live_handler,
    moment,
    next_phase,
    pass_conditions,
    route_claim,
    route_holder,
    route_index_entry,
    tenant_holder,
    transitions,
    unhandled,
    with_own_writes,
)
from wpenv.operator.result import GiveUp, Requeue, Result, Retry
from wpenv.orphans import run_scan
from wpenv.orphans.scan import list_environments
from wpenv.plan import TAG_RETAINED, archive_prefix
from wpenv.reconcilers.base import Context
from wpenv.retain import retain

ORPHAN_SCAN_FIRST_DELAY = 300.0
# How long a spec generation may wait with no handler on it before `catch_up` takes it.
CATCH_UP_SECONDS = 15.0
PROVISION_TARGET_SECONDS = 15 * 60  # HLD 5.1
# Where a suspend or a resume (HLD 6: within 2 and 5 minutes) has arrived.
ARRIVES_AT = {"suspend": Phase.SUSPENDED, "resume": Phase.ACTIVE}
# Requeues that are how a pass waits for AWS, not failures (see operator.logs).
CONVERGING = "Converging"
QUEUED = "Queued for a provisioning slot"
DEFERRED_SUSPEND = "Applying the deferred suspend"
ROUTINE_REQUEUES = (CONVERGING, QUEUED, DEFERRED_SUSPEND)
# How often a queued environment asks for a slot (a local check, no AWS call), at the
# front of the queue; further back it asks less often, up to the maximum.
QUEUE_POLL_SECONDS = 1.0
QUEUE_POLL_MAX_SECONDS = 60.0
# The handlers' logger: its name is part of every line, as it was before these moved here.
log = logging.getLogger("wpenv.operator.handlers")

# Post an Event at once / merge fields into the status at once: progress that cannot wait
# for the end of a long call (a provision's start, each deprovisioning step).
Post = Callable[[engine.Event], None]
Write = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Env:
    """One environment as a kopf event shows it: all a use case reads from the event."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str] = field(default_factory=dict)
    created: str | None = None
    deleting: bool = False
    # kopf's indices of every environment, what this one knows of the others (see
    # `decisions.tenant_holder` and `decisions.route_holder`); no API call reads them.
    tenants: Mapping[Any, Any] = field(default_factory=dict)
    routes: Mapping[Any, Any] | None = None
    deletion_requested: str | None = None  # metadata.deletionTimestamp
    # A person's spec change started this pass (kopf's update): they wait for its effect,
    # so it reads directly what no live listing holds (`Context.eager`).
    eager: bool = False

    @classmethod
    def of(
        cls,
        meta: Mapping[str, Any],
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
        handler: Mapping[str, Any],
    ) -> Env:
        """Copy what the use cases need out of kopf's views of the object and the
        handler's other keyword arguments (the indices, the cause's reason)."""
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=str(meta.get("uid")),
            generation=meta.get("generation"),
            spec=dict(spec),
            status=dict(status),
            annotations=dict(meta.get("annotations") or {}),
            created=meta.get("creationTimestamp"),
            deleting=bool(meta.get("deletionTimestamp")),
            tenants=handler.get("tenants") or {},
            routes=handler.get("routes"),
            deletion_requested=meta.get("deletionTimestamp"),
            eager=handler.get("reason") == "update",
        )

    @property
    def tenant(self) -> str:
        """The spec's tenantId, which names every AWS and MySQL resource."""
        return str(self.spec.get("tenantId"))

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, name), as the tenants index holds it."""
        return self.namespace, self.name


def _context(app: App, env: Env, spec: Mapping[str, Any] | None = None) -> Context:
    """The pass's Context: the one place a use case builds one."""
    return app.context(env.namespace, env.name, env.spec if spec is None else spec, env.status,
                       eager=env.eager)


def _converge(
    app: App, ctx: Context, *, attempt: int, may_roll_back: bool, waited: int = 0
) -> engine.Outcome:
    """One converge pass: the one place a use case runs one."""
    return engine.converge(ctx, app.resources, attempt=attempt, may_roll_back=may_roll_back,
                           waited=waited)


# --- create, spec change, resume -----------------------------------------------------------


def reconcile(app: App, env: Env, post: Post, *, resumed: bool = False) -> Result:
    """Converge the environment toward its spec; requeue until it is Active or Failed.

    `env.tenants` and `env.routes` (kopf's indices) say who else claims its tenant or
    route; `post` announces the start of a provision at once, since the pass that follows
    takes a while. `resumed`: the operator (re)started and kopf shows every object again;
    one at rest costs nothing (no AWS call): its drift check looks at AWS at its turn.
    The Kubernetes API failing under a pass (`_kube_trouble`) is retried with the backoff.
    """
    try:
        return _reconcile(app, env, post, resumed=resumed)
    except Exception as exc:
        return _kube_trouble(app, env, exc)


def _reconcile(app: App, env: Env, post: Post, *, resumed: bool) -> Result:
    """`reconcile`, its errors not yet sorted."""
    status = env.status
    if env.deleting or (resumed and at_rest(env)):
        return Result()  # one being deleted is the finalizer's (`delete`), never converged
    if status.get("phase") == Phase.FAILED.value and status.get("observedGeneration") == (
        env.generation
    ):
        return Result()  # Failed stays Failed until someone changes the spec.
    first = accept(dict(status), env.generation)
    current = {**status, **first}
    was_active = (bool((current.get("provisioning") or {}).get("finishedAt"))
                  or app.slots.finished(env.uid))
    holder = None if was_active else tenant_holder(env.tenants, env.tenant, env.key)
    if holder is not None:
        return _tenant_in_use(env, current, first, holder)
    taken = _route_taken(app, env)
    if taken is not None:
        app.slots.release(env.uid)  # a slot held since an earlier pass, or a place in line
        return _route_in_use(env, current, first, *taken, was_active=was_active)
    if not was_active and not app.slots.acquire(env.uid):
        return _queued(app, env, first)
    if _stale(app, env):
        return Result()
    return _pass(app, env, current, first, was_active=was_active, post=post)


def _current(env: Env) -> Mapping[str, Any] | None:
    """The object as the API server has it now (None: gone): the one call site of the read."""
    return kube.fetch(env.namespace, env.name)


def _stale(app: App, env: Env) -> bool:
    """Whether the event is about an object that is gone, replaced or being deleted.

    kopf hands a handler the body from its event; an operator that was paused (a frozen
    node) works through the events it missed, of objects that may be gone by then, and a
    pass on one would make AWS resources nothing owns. One GET before a pass acts (a drift
    pass of a settled environment has none: kopf's timers stop with the object).
    """
    meta = (_current(env) or {}).get("metadata") or {}
    if str(meta.get("uid")) != env.uid:
        log.info("%s/%s (uid %s) is gone; its stale event is dropped",
                 env.namespace, env.name, env.uid)
        app.forget(env.uid)
        return True
    if meta.get("deletionTimestamp"):
        app.slots.release(env.uid)  # the finalizer (`delete`) takes it from here
        return True
    return False


def _kube_trouble(app: App, env: Env, exc: Exception) -> Result:
    """A Kubernetes client error out of a pass: the object gone ends it quietly, the API
    server not answering retries it with the engine's backoff; anything else is raised."""
    if kube.gone(exc):
        log.info("%s/%s is gone; nothing more to do for it", env.namespace, env.name)
        app.forget(env.uid)
        return Result()
    if not kube.unavailable(exc):
        raise exc
    error = engine.classify(exc)
    log.warning("%s/%s waits for the Kubernetes API: %s", env.namespace, env.name, error)
    app.streak(env.uid, engine.Outcome(troubled=True))
    return Result(requeue=Retry(str(error), engine.backoff(app.streak(env.uid), app.settings)))


def _tenant_in_use(
    env: Env, current: Mapping[str, Any], first: Mapping[str, Any], holder: str
) -> Result:
    """Failed for good: another, older manifest holds this tenant id."""
    message = (
        f"tenantId {env.tenant} belongs to {holder}; each tenant has one "
        "environment (its AWS resources and database are named after the tenant)"
    )
    failed = st.status_patch(
        current, env.generation, phase=Phase.FAILED,
        conditions=[st.Cond(st.READY, st.FALSE, reasons.TENANT_ID_IN_USE, message)],
    )
    return Result(
        status={**first, **failed},
        events=(engine.Event("Warning", reasons.TENANT_ID_IN_USE, message),),
        requeue=GiveUp(message),
    )


def _route_taken(app: App, env: Env) -> tuple[RouteClaim, str] | None:
    """The environment's claim and who holds a route it overlaps (`route_holder`), if any:
    by kopf's index, corrected by the statuses this process wrote since (`with_own_writes`).
    """
    me = route_claim(env.created, env.namespace, env.name, env.spec, env.status)
    if me is None or env.routes is None:
        return None
    holder = route_holder(with_own_writes(env.routes, app.own_route_writes()), me)
    return None if holder is None else (me, holder)


def _route_in_use(
    env: Env,
    current: Mapping[str, Any],
    first: Mapping[str, Any],
    me: RouteClaim,
    holder: str,
    *,
    was_active: bool,
) -> Result:
    """Refused before any AWS call: `holder` claims a route this spec's overlaps.

    A new environment is Failed, as for TenantIdInUse; one that serves keeps its phase and
    its current rule, and only the change is refused. Either tries again when its spec
    changes; one that serves also when a drift pass finds the route free.
    """
    message = (
        f"route {me.prefix} on {me.host or 'any host'} overlaps the route of {holder}, "
        "which holds it; a request may go to one environment only"
    )
    phase = Phase(current["phase"]) if was_active else Phase.FAILED
    refused = st.status_patch(
        current, env.generation, phase=phase,
        conditions=[st.Cond(st.READY, st.FALSE, reasons.ROUTE_IN_USE, message)],
    )
    return Result(
        status={**first, **refused},
        events=(engine.Event("Warning", reasons.ROUTE_IN_USE, message),),
        requeue=GiveUp(message),
    )


def _queued(app: App, env: Env, first: Mapping[str, Any]) -> Result:
    """Wait for a provisioning slot, saying our place in the queue.

    The status changes only when the place does (a poll that moved nobody writes
    nothing: the patch is against the status as it is, whose Queued condition replaced
    `first`'s Accepted), and the back of the queue polls less often (`queue_poll`).
    """
    place = app.slots.position(env.uid)
    message = (
        f"Waiting for a provisioning slot ({app.slots.limit} at once): "
        f"number {place} in the queue"
    )
    waiting = st.status_patch(
        env.status, env.generation, phase=Phase.PENDING_PROVISIONING,
        conditions=[st.Cond(st.READY, st.FALSE, reasons.QUEUED, message)],
        queuePosition=place, nextRetryAt=None,
    )
    accepted = {key: value for key, value in first.items() if key != "conditions"}
    return Result(status={**accepted, **waiting},
                  requeue=Retry(QUEUED, queue_poll(place, app.slots.limit,
                                                   app.slots.expected_wait(env.uid))))


def queue_poll(place: int, limit: int, expected: float | None = None) -> float:
    """Seconds until a queued environment looks again (1 s to a minute).

    Every look is a kopf retry, which PATCHes the object, and most looks move the queue's
    place, which patches the status too: 900 queued looking every few seconds kept the
    API server half a core busy. Once a provision has ended here, the slots know when the
    next ones should free (`expected_wait`): a waiter looks after half of what is left,
    so it looks a few times per wait whatever its length, and every second once its slot
    is due. Before that, the front `limit` look every second and each `limit` further
    back a second less often.
    """
    if expected is not None:
        return min(QUEUE_POLL_MAX_SECONDS, max(QUEUE_POLL_SECONDS, expected / 2))
    return min(QUEUE_POLL_MAX_SECONDS, QUEUE_POLL_SECONDS * max(1, -(-place // limit)))


def _pass(
    app: App,
    env: Env,
    current: Mapping[str, Any],
    first: Mapping[str, Any],
    *,
    was_active: bool,
    post: Post,
) -> Result:
    """One converge pass holding a slot (or Active), and what it means for the status."""
    times = dict(current.get("provisioning") or {})
    if not was_active and not times.get("startedAt"):
        times["startedAt"] = st.now_rfc3339()
        post(engine.Event("Normal", reasons.PROVISIONING, "Provisioning started"))
    wanted = dict(env.spec)
    deferred = bool(wanted.get("suspended")) and not was_active
    if deferred:
        wanted["suspended"] = False  # provision serving first, suspend once Active
    moving = _transition(env, was_active=was_active)
    if moving is not None:
        app.stopwatch.start(env.uid, moving)
    ctx = _context(app, env, wanted)
    with app.lock_for(env.uid):
        outcome = _converge(app, ctx, attempt=app.streak(env.uid),
                            may_roll_back=not was_active, waited=app.waited(env.uid))
    if any(c.reason == reasons.ENVIRONMENT_GONE for c in outcome.conditions):
        app.forget(env.uid)  # deleted during the pass: recording its ids found it gone
        return Result()
    app.streak(env.uid, outcome)
    app.waited(env.uid, outcome)  # the next look comes sooner after a change (poll_delay)
    fields = observed_fields(app, ctx, outcome)

    suspended = bool(env.spec.get("suspended"))
    phase = next_phase(outcome, was_active=was_active, suspended=suspended,
                       phase=env.status.get("phase"))
    conditions = pass_conditions(outcome, suspended=suspended, was_active=was_active,
                                 status=current)
    events = [*outcome.events, *transitions(app.said, env.uid, current, conditions)]
    if outcome.ready and not was_active:
        crashpoints.crashpoint(crashpoints.PROVISION, crashpoints.FINISHED)
        times, active = _finished(times)
        events.append(active)
        app.slots.finish(env.uid)
    changes = st.status_patch(
        current, env.generation, phase=phase, conditions=conditions, **fields,
        provisioning=times, queuePosition=None, nextRetryAt=_next_retry(outcome),
    )
    if phase not in (Phase.PROVISIONING, Phase.PENDING_PROVISIONING):
        app.slots.release(env.uid)
    if moving is not None and phase == ARRIVES_AT[moving]:
        _arrived(app, env.uid, moving)
    result = "ready" if outcome.ready else "failed" if outcome.failure else "progressing"
    metrics.PASSES.labels(result).inc()
    _wrote_route(app, env, {**current, **changes})
    return Result(status={**first, **changes}, events=tuple(events),
                  requeue=_requeue(outcome, deferred=deferred))


def _wrote_route(app: App, env: Env, written: Mapping[str, Any]) -> None:
    """Remember the route claim the status this pass writes gives the environment."""
    claim = route_claim(env.created, env.namespace, env.name, env.spec, written)
    app.wrote_route(f"{env.namespace}/{env.name}", route_index_entry(claim, written).get(ROUTES))


def _next_retry(outcome: engine.Outcome) -> str | None:
    """When a troubled pass is tried again (its backoff), for the status; None otherwise.

    Routine polls of a rollout leave it out: a new time every few seconds would be a
    Kubernetes write every pass.
    """
    if not outcome.troubled or outcome.retry_after is None:
        return None
    at = datetime.now(UTC) + timedelta(seconds=outcome.retry_after)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _transition(env: Env, *, was_active: bool) -> str | None:
    """"suspend" or "resume" while an environment moves between Active and Suspended.

    The phase stays where it was until the pass that settles, so every pass on the way
    names the same move, and a spec that flips back mid-way names the other one.
    """
    if not was_active:
        return None  # a suspend asked for while provisioning waits for Active (deferred)
    phase, suspended = env.status.get("phase"), bool(env.spec.get("suspended"))
    if suspended and phase == Phase.ACTIVE.value:
        return "suspend"
    if not suspended and phase == Phase.SUSPENDED.value:
        return "resume"
    return None


def _arrived(app: App, uid: str, moving: str) -> None:
    """A suspend or resume settled: record how long it took from its first pass."""
    seconds = app.stopwatch.stop(uid, moving)
    if seconds is not None:
        metrics.observe_duration(moving, seconds)


def _finished(times: Mapping[str, Any]) -> tuple[dict[str, Any], engine.Event]:
    """The provision's timings once Active (HLD 5.1's target), and its Active Event."""
    finished = datetime.now(UTC)
    started = datetime.fromisoformat(times["startedAt"].replace("Z", "+00:00"))
    seconds = round((finished - started).total_seconds(), 1)
    metrics.observe_duration("provision", seconds)
    done = {
        **times,
        "finishedAt": st.now_rfc3339(),
        "durationSeconds": seconds,
        "withinTarget": seconds < PROVISION_TARGET_SECONDS,
    }
    return done, engine.Event("Normal", reasons.ACTIVE, f"Active after {seconds}s")


def _requeue(outcome: engine.Outcome, *, deferred: bool) -> Requeue:
    """When the reconcile handler comes back after this pass, if at all."""
    if outcome.failure is not None:
        # Nothing more this generation can do: a changed spec (or the drift check of an
        # Active environment) is the next chance.
        return GiveUp(str(outcome.failure))
    if outcome.retry_after is not None:
        return Retry(CONVERGING, outcome.retry_after)
    if deferred and outcome.ready:
        return Retry(DEFERRED_SUSPEND, 0.1)
    return None


# --- the catch-up and drift timers ---------------------------------------------------------


async def catch_up(app: App, env: Env, post: Post) -> Result:
    """Make the pass that no handler will make (see `decisions.unhandled`).

    Cheap when there is nothing to do (no API call, no thread): it only compares the
    generation with the status and kopf's progress records.
    """
    if env.deleting or app.lock_for(env.uid).locked():
        return Result()
    stuck = unhandled(
        env.annotations, env.status, env.generation,
        created=env.created, now=datetime.now(UTC), grace=CATCH_UP_SECONDS,
    )
    if not stuck:
        return Result()
    log.info("Generation %s of %s/%s has no handler on it; reconciling it now",
             env.generation, env.namespace, env.name)
    return await asyncio.to_thread(reconcile, app, env, post)


def at_rest(env: Env) -> bool:
    """Settled in what its current spec asks: Active or Suspended as wanted, and Ready.

    Nothing for a pass to do unless AWS changed behind the operator's back, which is the
    drift check's business.
    """
    phase = env.status.get("phase")
    wanted = Phase.SUSPENDED.value if env.spec.get("suspended") else Phase.ACTIVE.value
    ready = st.find(env.status.get("conditions") or [], st.READY) or {}
    return (phase == wanted and not env.deleting
            and env.status.get("observedGeneration") == env.generation
            and ready.get("status") == st.TRUE)


def drift(app: App, env: Env) -> Result:
    """Repair what someone changed by hand; an idle pass makes no write at all.

    Runs only for a settled environment (Active or Suspended, status for the current
    generation, not being deleted) and never while a change is being reconciled, nor
    while its spec's route is refused (RouteInUse): the pass would apply that route.
    """
    settled = env.status.get("phase") in (Phase.ACTIVE.value, Phase.SUSPENDED.value)
    if not settled or env.deleting:
        return Result()
    if env.status.get("observedGeneration") != env.generation:
        return Result()
    if live_handler(env.annotations, now=datetime.now(UTC), grace=CATCH_UP_SECONDS):
        return Result()  # the handler owns the status until it is done (catch_up: a stuck one)
    if _route_taken(app, env) is not None:
        return Result()
    lock = app.lock_for(env.uid)
    if not lock.acquire(blocking=False):
        return Result()
    try:
        ctx = _context(app, env)
        outcome = _converge(app, ctx, attempt=0, may_roll_back=False)
    finally:
        lock.release()
    metrics.DRIFT_PASSES.inc()
    return _drift_checked(app, env, ctx, outcome)


def _drift_checked(app: App, env: Env, ctx: Context, outcome: engine.Outcome) -> Result:
    """A drift pass's status and Events: repairs, and a failure only when it is new."""
    fields = observed_fields(app, ctx, outcome)
    events: list[engine.Event] = []
    repairs = [e.message for e in outcome.events if e.reason in REPAIRS]
    if repairs:
        metrics.DRIFT_CORRECTIONS.inc(len(repairs))
        events.append(engine.Event("Normal", reasons.DRIFT_CORRECTED, "; ".join(repairs)))
        log.info("Drift corrected in %s/%s: %s", env.namespace, env.name, repairs)
    status = env.status
    suspended = bool(env.spec.get("suspended"))
    conditions = pass_conditions(outcome, suspended=suspended, was_active=True, status=status)
    warnings = [e for e in outcome.events if e.type == "Warning"]
    ready_before = st.find(status.get("conditions") or [], st.READY) or {}
    reason = outcome.failure.reason if outcome.failure else None
    if warnings and ready_before.get("reason") != reason:
        events += warnings  # a persisting failure is reported once, not every pass
    events += transitions(app.said, env.uid, status, conditions)
    phase = next_phase(outcome, was_active=True, suspended=suspended, phase=status.get("phase"))
    changes = st.status_patch(status, env.generation, phase=phase, conditions=conditions,
                              **fields)
    return Result(status=changes, events=tuple(events))


# --- deletion ------------------------------------------------------------------------------


def delete(
    app: App, env: Env, *, retry: int, post: Post, write: Write
) -> Result:
    """The finalizer: archive and verify, then remove everything (or retain it all).

    No requeue releases the finalizer; a Retry keeps the object in PendingDeprovision and
    comes back with backoff, having removed nothing that holds data unless its archive was
    verified. `post` and `write` report each step at once: deprovisioning takes minutes.
    """
    app.slots.release(env.uid)
    holder = tenant_holder(env.tenants, env.tenant, env.key)
    if holder is not None:
        app.forget(env.uid)
        message = f"tenantId {env.tenant} belongs to {holder}; this manifest owns nothing"
        return Result(events=(engine.Event("Normal", reasons.NOTHING_TO_REMOVE, message),))
    ctx = _context(app, env)
    if ctx.spec.deletion_policy == DeletionPolicy.RETAIN.value:
        tagged = retain(ctx, app.resources)
        app.forget(env.uid)
        message = (
            f"deletionPolicy Retain: {len(tagged)} AWS resources tagged "
            f"{TAG_RETAINED}=true and left in place, with database {ctx.names.database} "
            "and the tenant's files"
        )
        return Result(events=(engine.Event("Normal", reasons.RETAINED, message),))
    return _deprovision(app, env, ctx, retry=retry, post=post, write=write)


def _deprovision(
    app: App, env: Env, ctx: Context, *, retry: int, post: Post, write: Write
) -> Result:
    """One attempt at the eight steps, resuming the archive an earlier attempt began."""
    current = dict(env.status)
    location = (current.get("archive") or {}).get("location")
    if location:
        prefix = location.removeprefix(f"s3://{app.settings.archive_bucket}/").rstrip("/")
    else:
        prefix = archive_prefix(app.settings, env.namespace, env.name, datetime.now(UTC))
    archive = Archive(bucket=app.settings.archive_bucket, prefix=prefix)

    def report(step: int, message: str) -> None:
        post(engine.Event("Normal", reasons.DEPROVISIONING, f"Step {step}/{STEPS}: {message}"))

    # The offboarding target (HLD 6) runs from the deletion request, across attempts.
    started = moment(env.deletion_requested) or datetime.now(UTC)
    try:  # the status writes too: the API server down retries with the backoff
        if current.get("phase") != Phase.PENDING_DEPROVISION.value or not location:
            current.update(_begin(env, archive, post=post, write=write))
        with app.lock_for(env.uid):
            Deprovisioner(ctx, app.resources, archive, report).run()
        return _deprovisioned(app, env, current, archive, started, write=write)
    except Exception as exc:
        return _not_yet(app, env, current, exc, retry=retry, write=write)


def _begin(env: Env, archive: Archive, *, post: Post, write: Write) -> dict[str, Any]:
    """Show PendingDeprovision and where the archive goes, before the first step."""
    start = st.status_patch(
        env.status, env.generation, phase=Phase.PENDING_DEPROVISION,
        conditions=[
            st.Cond(st.READY, st.FALSE, reasons.DEPROVISIONING, "Archiving, then removing"),
            st.Cond(DEPROVISION, st.FALSE, reasons.IN_PROGRESS, f"Archiving to {archive.uri()}"),
        ],
        archive={"location": archive.uri()},
    )
    write(start)
    post(engine.Event("Normal", reasons.DEPROVISIONING,
                      f"Deprovisioning started; archiving to {archive.uri()}"))
    crashpoints.crashpoint(crashpoints.DEPROVISION, crashpoints.BEGUN)
    return start


def _not_yet(
    app: App, env: Env, current: Mapping[str, Any], exc: Exception, *, retry: int, write: Write
) -> Result:
    """A failed attempt: say what failed in the Deprovision condition and retry later.

    The object gone (another replica released the finalizer) ends quietly; a status write
    that fails too (the API server down) leaves the condition for the next attempt.
    """
    if kube.gone(exc):
        app.forget(env.uid)
        return Result()
    reason, message = failure_of(exc)
    log.warning("Deprovisioning %s/%s must be retried: %s", env.namespace, env.name, message)
    failed = st.status_patch(
        current, env.generation, phase=Phase.PENDING_DEPROVISION,
        conditions=[
            st.Cond(DEPROVISION, st.FALSE, reason, f"{message}; nothing holding data "
                    "was removed without a verified archive; retrying"),
        ],
    )
    if failed:
        try:
            write(failed)
        except Exception as error:
            if not (kube.unavailable(error) or kube.gone(error)):
                raise
            log.warning("The status of %s/%s could not be written: %s",
                        env.namespace, env.name, engine.classify(error))
    return Result(events=(engine.Event("Warning", reason, message),),
                  requeue=Retry(message, engine.backoff(retry, app.settings)))


def _deprovisioned(
    app: App,
    env: Env,
    current: Mapping[str, Any],
    archive: Archive,
    started: datetime,
    *,
    write: Write,
) -> Result:
    """Everything archived and removed: Deprovisioned is the last phase written."""
    locations = {"location": archive.uri(), **archive.locations}
    seconds = round((datetime.now(UTC) - started).total_seconds(), 1)
    metrics.observe_duration("deprovision", seconds)
    done = st.status_patch(
        current, env.generation, phase=Phase.DEPROVISIONED,
        conditions=[
            st.Cond(
                st.READY, st.FALSE, reasons.DEPROVISIONED, "Everything was archived and removed"
            ),
            st.Cond(DEPROVISION, st.TRUE, reasons.COMPLETED, f"Archived to {archive.uri()}"),
        ],
        archive=locations,
    )
    write(done)  # the last phase written before kopf removes the finalizer
    crashpoints.crashpoint(crashpoints.DEPROVISION, crashpoints.FINISHED)
    where = ", ".join(f"{k} {v}" for k, v in archive.locations.items())
    app.forget(env.uid)
    message = f"Archived and removed in {seconds}s; {where or 'nothing to archive'}"
    return Result(events=(engine.Event("Normal", reasons.DEPROVISIONED, message),))


# --- the orphan scan -----------------------------------------------------------------------


async def scan_orphans(app: App) -> None:
    """Scan for orphans (HLD 5.4) a few minutes after start, then every interval, forever.

    The first scan waits so that a restart loop cannot hammer AWS; a failed scan is logged
    and never takes the operator down (the next one may work).
    """
    interval = app.settings.orphan_scan_interval_seconds
    await asyncio.sleep(min(interval, ORPHAN_SCAN_FIRST_DELAY))
    api = kube.api()
    while True:
        try:
            await asyncio.to_thread(run_scan, app.settings, app.clients, api)
        except Exception as exc:
            log.warning("orphan scan failed: %s", engine.classify(exc))
        await asyncio.sleep(interval)


async def audit_inventory(app: App) -> None:
    """Every drift interval, forget environments the metrics still count but the API no
    longer has (deleted while the watch was paused: no deletion event ever comes).

    One paged list of the environments, read for their uids only; a failed audit is logged
    and the next one tries again.
    """
    api = kube.api()
    while True:
        await asyncio.sleep(app.settings.drift_interval_seconds)
        try:
            listed_at = time.time()
            uids = await asyncio.to_thread(_environment_uids, api)
            forgotten = metrics.INVENTORY.retain(uids, listed_at)
            if forgotten:
                log.info("forgot %d environment(s) deleted while the watch was away", forgotten)
        except Exception as exc:
            log.warning("inventory audit failed: %s", engine.classify(exc))


def _environment_uids(api: kube.Api) -> set[str]:
    """The uid of every WordPressEnvironment in the cluster now."""
    return {str((obj.get("metadata") or {}).get("uid") or "") for obj in list_environments(api)}

