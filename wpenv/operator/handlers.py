"""kopf handlers: thin adapters from Kubernetes events to the use cases.

Each handler reads what it needs from the event (`_env`), calls one function of
`usecases`, and applies the Result it returns (`_apply`): the status patch, the Events and
the requeue. What to do lives in `usecases` and `decisions`; policy in wpenv.engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

import kopf

from wpenv import engine, kube, metrics
from wpenv.api.models import GROUP, PLURAL, VERSION
from wpenv.aws import SERVICES, Clients
from wpenv.operator import compact, connections, decisions, memory, observe, timing, usecases
from wpenv.operator.app import App, provision_slots
from wpenv.operator.result import GiveUp, Result, Retry
from wpenv.settings import Settings

FINALIZER = f"{GROUP}/finalizer"
# Read once at import: kopf needs the timer's interval when the handler is registered.
DRIFT_INTERVAL = Settings().drift_interval_seconds
CATCH_UP_SECONDS = usecases.CATCH_UP_SECONDS
CONSISTENCY_SECONDS = 60.0
WORKERS_PER_SLOT = 2
# `python -m wpenv.operator` lowers kopf's log level for these requeues (operator.logs).
ROUTINE_REQUEUES = usecases.ROUTINE_REQUEUES
# The `controller` label of the controller-runtime families, one per kind of handler.
CONTROLLER = "wordpressenvironment"
log = logging.getLogger(__name__)


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """kopf's own login, through a session with a capped number of connections."""
    return connections.login(Settings().kube_connections, **kwargs)


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
    # After its own patch kopf waits this long for the watch to show that version before
    # it acts on older events; past it, it assumes consistency and may re-run a finished
    # handler on a stale body (the ids the passes write at once make such events). Under
    # CPU starvation the 5 s default ran out with the event already on its way.
    settings.persistence.consistency_timeout = CONSISTENCY_SECONDS
    settings.watching.server_timeout = 300
    compact.install()  # before the watchers start: kopf keeps every body it is shown
    kube.load_config()
    config = Settings()
    if config.shard_selector:  # this shard's environments only, filtered by the API server
        settings.watching.label_selectors[GROUP, PLURAL] = config.shard_selector
    # Passes wait on AWS, not on a core: one thread for each provision slot, and as many
    # again for deletions, drift and catch-up passes. kopf's default pool has
    # min(32, cores + 4) threads: 6 on two cores, so 4 of 10 slots waited for a thread.
    settings.execution.max_workers = WORKERS_PER_SLOT * config.max_concurrent_provisions
    clients = Clients(config)
    # Made now, not in the first pass that needs them: a boto3 client takes a while to
    # build (its service model), and the first provision after a start would wait for
    # a dozen of them.
    for service in SERVICES:
        getattr(clients, service.replace("-", "_"))
    clients.once("cognito-idp")
    memo.app = App(
        settings=config,
        clients=clients,
        slots=provision_slots(config),
        resources=engine.default_resources(),
    )
    metrics.serve(config.metrics_port)


def _env(kwargs: Mapping[str, Any]) -> usecases.Env:
    """The object as the use cases read it, from the handler's keyword arguments."""
    return usecases.Env.of(kwargs["meta"], kwargs["spec"], kwargs["status"], kwargs)


def _post(body: kopf.Body, event: engine.Event) -> None:
    """Post one Event on the object (kopf sends it from its own queue)."""
    kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _apply(body: kopf.Body, patch: kopf.Patch, result: Result) -> None:
    """Do what a use case decided: merge its status, post its Events, then requeue."""
    patch.status.update(result.status)
    for event in result.events:
        _post(body, event)
    if isinstance(result.requeue, Retry):
        raise kopf.TemporaryError(result.requeue.message, delay=result.requeue.delay)
    if isinstance(result.requeue, GiveUp):
        raise kopf.PermanentError(result.requeue.message)


@kopf.index(GROUP, VERSION, PLURAL)
def tenants(
    namespace: str | None, name: str, spec: kopf.Spec, meta: kopf.Meta, **_: Any
) -> Any:
    """Every environment by tenantId, kept in memory by kopf (no API call to consult it).

    AWS and MySQL names derive from the tenant id, so two manifests naming one tenant would
    share (and fight over, and on deletion destroy) the same resources: the older one wins.
    """
    return {spec.get("tenantId"): (str(meta.get("creationTimestamp") or ""), namespace, name)}


@kopf.index(GROUP, VERSION, PLURAL)
def routes(
    namespace: str | None,
    name: str,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    **_: Any,
) -> Any:
    """Every environment's route and rank, under one key (`decisions.route_holder`).

    Kept up to date by kopf on every change, the status's too, since the rank depends on
    how far the environment got; one Failed before it ever served claims nothing.
    """
    created = meta.get("creationTimestamp")
    claim = decisions.route_claim(created, str(namespace), name, spec, status)
    return decisions.route_index_entry(claim, status)
@kopf.on.event(GROUP, VERSION, PLURAL)
def inventory(*, type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Every watch event, deletions included: the phase and queue gauges count from it.

    An object that is gone from the API needs nothing kept for it any more, even if it
    went without the finalizer (a provisioning slot or a place in the queue).
    """
    gone = observe.watched(type, body)
    app = getattr(memo, "app", None)
    if gone is not None and app is not None:
        app.forget(gone)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@observe.reconciler(CONTROLLER, ROUTINE_REQUEUES)
def reconcile(*, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
    """Converge the environment toward its spec; requeue until it is Active or Failed."""
    resumed = kwargs.get("reason") == kopf.Reason.RESUME
    result = usecases.reconcile(memo.app, _env(kwargs), partial(_post, body), resumed=resumed)
    _apply(body, patch, result)


def _catch_up_turn(body: kopf.Body, **_: Any) -> float:
    """The first catch-up after the grace, at the environment's own moment (`timing`)."""
    return CATCH_UP_SECONDS + timing.until_turn(str(body.metadata.uid), CATCH_UP_SECONDS)


def _drift_turn(body: kopf.Body, **_: Any) -> float:
    """The first drift check at the environment's own moment; `sharp` keeps it there."""
    return timing.until_turn(str(body.metadata.uid), DRIFT_INTERVAL)


@kopf.timer(GROUP, VERSION, PLURAL, interval=CATCH_UP_SECONDS, initial_delay=_catch_up_turn,
            sharp=True)
@observe.about_environment
async def catch_up(*, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
    """Make the pass that no handler will make; cheap (no API call) when none is due."""
    result = await usecases.catch_up(memo.app, _env(kwargs), partial(_post, body))
    # A requeue or a failure: the status says why; the next tick or spec change comes back.
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
        _apply(body, patch, result)


@kopf.timer(GROUP, VERSION, PLURAL, interval=DRIFT_INTERVAL, initial_delay=_drift_turn,
            sharp=True)
@observe.reconciler(f"{CONTROLLER}-drift", ROUTINE_REQUEUES)
def drift(*, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
    """Repair what someone changed by hand; an idle pass makes no write at all."""
    _apply(body, patch, usecases.drift(memo.app, _env(kwargs)))


@kopf.on.delete(GROUP, VERSION, PLURAL)
@observe.reconciler(f"{CONTROLLER}-deletion", ROUTINE_REQUEUES)
def on_delete(
    *, body: kopf.Body, patch: kopf.Patch, retry: int, memo: kopf.Memo, **kwargs: Any
) -> None:
    """The finalizer: archive and verify, then remove everything (or retain it all).

    Returning releases the finalizer; raising TemporaryError keeps the object in
    PendingDeprovision and retries with backoff.
    """
    env = _env(kwargs)
    result = usecases.delete(
        memo.app, env, retry=retry, post=partial(_post, body),
        write=kube.status_writer(env.namespace, env.name),
    )
    _apply(body, patch, result)


@kopf.on.startup()
async def orphan_scans(memo: kopf.Memo, **_: Any) -> None:
    """Start the process-wide tasks beside the handlers: the orphan scan (HLD 5.4), the
    inventory audit and the heap trim (`memory`).

    The scan is not a per-object timer: it compares the whole account with every
    manifest. Results go to the `wpenv_orphaned_resources` gauge and one log line per orphan.
    """
    memo.orphan_task = asyncio.create_task(usecases.scan_orphans(memo.app))
    memo.audit_task = asyncio.create_task(usecases.audit_inventory(memo.app))
    memo.trim_task = asyncio.create_task(memory.trim_periodically())


@kopf.on.cleanup()
async def stop_orphan_scans(memo: kopf.Memo, **_: Any) -> None:
    """Stop the scan, audit and trim tasks with the operator."""
    for name in ("orphan_task", "audit_task", "trim_task"):
        task = getattr(memo, name, None)
        if task is not None:
            task.cancel()


@kopf.on.probe(id="ready")
def probe(**_: Any) -> bool:
    """The liveness endpoint answers only while the event loop runs handlers."""
    return True
