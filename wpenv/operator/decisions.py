"""The handlers' decisions, without I/O: phases, conditions, ownership, Events.

Kept apart from the kopf adapters in `handlers` so each rule of the HLD's state table can
be tested on its own (tests/unit/operator/test_decisions.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from wpenv import conditions as st
from wpenv import engine, reasons
from wpenv.api.models import GROUP, Phase, parse_spec
from wpenv.plan import Route, route_of, routes_overlap

SUSPENDED = "Suspended"
SUSPENDED_MESSAGE = "Scaled to zero as the spec asks (the listener rule is removed if configured)"
DEPROVISION = "Deprovision"
# kopf's progress records of the reconcile handler (AnnotationsProgressStorage, our prefix).
PROGRESS_PREFIX = f"{GROUP}/reconcile"
# Phases a pass may be missing in (provisioning has its own handler and queue).
SETTLED = (Phase.ACTIVE.value, Phase.SUSPENDED.value, Phase.PROVISIONING.value)
# Engine Events that mean a pass changed something.
REPAIRS = (reasons.CREATED, reasons.UPDATED, reasons.REMOVED)


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
                st.READY, st.FALSE, reasons.PENDING_PROVISIONING,
                "Accepted; waiting to be provisioned",
            )
        ],
    )
    if patch and not (status.get("provisioning") or {}).get("queuedAt"):
        patch["provisioning"] = {"queuedAt": st.now_rfc3339()}
    return patch


def tenant_holder(index: Mapping[Any, Any], tenant: str, me: tuple[str, str]) -> str | None:
    """`namespace/name` of an older environment with the same tenant id, else None.

    `index` is kopf's `tenants` index: tenantId -> (creationTimestamp, namespace, name)s.
    """
    try:
        holders = sorted(index[tenant])
    except KeyError:
        return None
    for _created, namespace, name in holders:
        return None if (namespace, name) == me else f"{namespace}/{name}"
    return None


# The `routes` index's one key: every claim is compared with every other, since a route
# without a host overlaps routes of any host.
ROUTES = "routes"
# How far an environment got, the first part of its rank: one that serves keeps its route.
SERVING, STARTED, WAITING = 0, 1, 2


class RouteClaim(NamedTuple):
    """One environment's route as the `routes` index holds it, with its rank.

    The rank (stage, creationTimestamp, namespace, name) orders claims deterministically:
    an environment that serves (has been Active) before one being provisioned, that one
    before one still waiting, then the older manifest, then by name.
    """

    rank: tuple[int, str, str, str]
    host: str
    prefix: str

    @property
    def owner(self) -> str:
        """`namespace/name`."""
        return f"{self.rank[2]}/{self.rank[3]}"


def route_claim(
    created: str | None,
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
) -> RouteClaim | None:
    """The environment's claim on its route; None when its spec does not parse."""
    try:
        route = route_of(parse_spec(dict(spec)))
    except ValidationError:
        return None
    times = status.get("provisioning") or {}
    stage = SERVING if times.get("finishedAt") else STARTED if times.get("startedAt") else WAITING
    return RouteClaim((stage, created or "", namespace, name), route.host, route.prefix)


def holds_no_route(status: Mapping[str, Any]) -> bool:
    """Failed before it ever served: its provision was rolled back or never began (a
    TenantIdInUse or RouteInUse refusal), so it stands in nobody's way."""
    serving = bool((status.get("provisioning") or {}).get("finishedAt"))
    return status.get("phase") == Phase.FAILED.value and not serving


def route_index_entry(claim: RouteClaim | None, status: Mapping[str, Any]) -> dict[str, RouteClaim]:
    """What the `routes` index holds for one environment (`route_claim` of it, and its
    status): its claim, or nothing."""
    if claim is None or holds_no_route(status):
        return {}
    return {ROUTES: claim}


def with_own_writes(
    index: Mapping[Any, Any], written: Mapping[str, RouteClaim | None]
) -> dict[str, Any]:
    """The `routes` index as this process last wrote each environment's status.

    kopf's index follows the watch, which may lag behind a status this process has just
    patched (an environment it made Active a moment ago still shows as not serving);
    `written` (owner -> claim, None for no route) takes precedence for the owners it names.
    """
    claims = [c for c in index.get(ROUTES, ()) if c.owner not in written]
    return {ROUTES: [*claims, *(c for c in written.values() if c is not None)]}


def route_holder(index: Mapping[Any, Any], me: RouteClaim) -> str | None:
    """`namespace/name` of the first-ranked other environment in `me`'s way, else None.

    Why the Kubernetes objects (kopf's `routes` index, fed by its watch) and not the
    listener rules on the load balancers: the decision comes before any AWS call, costs
    none, sees the environments that have not created their rule yet (two applied at once
    must not both pass) and can rank them. Routes are compared across the whole pool: a
    host's DNS name points at one load balancer, and placement may move.

    In `me`'s way is an overlapping claim that ranks before it, or any other serving one
    when `me` serves too: a change of route never takes a route that already serves.
    """
    mine = Route(me.host, me.prefix)
    ahead = [
        claim
        for claim in index.get(ROUTES, ())
        if claim.owner != me.owner
        and (claim.rank < me.rank or claim.rank[0] == me.rank[0] == SERVING)
        and routes_overlap(Route(claim.host, claim.prefix), mine)
    ]
    return min(ahead).owner if ahead else None


def suspend_condition(
    spec_suspended: bool, was_active: bool, ready: bool, status: Mapping[str, Any]
) -> st.Cond | None:
    """The Suspended condition (HLD 4.2: suspend applies to an Active environment only)."""
    if spec_suspended and not was_active:
        return st.Cond(
            SUSPENDED, st.FALSE, reasons.DEFERRED,
            "Suspend was asked for while provisioning; it is applied once the environment "
            "is Active",
        )
    if spec_suspended:
        if ready:
            return st.Cond(SUSPENDED, st.TRUE, reasons.SUSPENDED, SUSPENDED_MESSAGE)
        return st.Cond(SUSPENDED, st.FALSE, reasons.SUSPENDING, "Scaling the service to zero")
    previous = st.find(status.get("conditions") or [], SUSPENDED)
    if previous is None:
        return None
    if ready:
        return st.Cond(SUSPENDED, st.FALSE, reasons.RESUMED, "Serving again")
    return st.Cond(SUSPENDED, st.FALSE, reasons.RESUMING, "Starting the service's tasks again")


def pass_conditions(
    outcome: engine.Outcome, *, suspended: bool, was_active: bool, status: Mapping[str, Any]
) -> list[st.Cond]:
    """A pass's conditions plus Rollout and Suspended; Ready says Suspended once it is."""
    conditions = list(outcome.conditions)
    rollout = engine.rollout_condition(outcome.facts)
    if rollout is not None:
        conditions.append(rollout)
    suspend = suspend_condition(suspended, was_active, outcome.ready, status)
    if suspend is not None:
        conditions.append(suspend)
    if outcome.ready and suspended and was_active:
        conditions.append(st.Cond(st.READY, st.TRUE, reasons.SUSPENDED, SUSPENDED_MESSAGE))
    return conditions


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


def failure_of(exc: BaseException) -> tuple[str, str]:
    """(reason, message) of a failed deprovisioning attempt; never a secret or a trace."""
    error = engine.classify(exc)
    return error.reason, str(error)



class Announcements:
    """What was announced by an Event, per environment, so a transition is told once.

    The status alone is not enough: a drift check may read it stale while a reconcile pass
    has just reported the same transition.
    """

    def __init__(self) -> None:
        self._said: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def first_time(self, uid: str, kind: str, reason: str) -> bool:
        """Record `reason` for (uid, kind); True if it differs from the last one recorded."""
        with self._lock:
            before = self._said.get((uid, kind))
            self._said[(uid, kind)] = reason
        return before != reason

    def forget(self, uid: str) -> None:
        """Drop an environment that is gone."""
        with self._lock:
            for key in [k for k in self._said if k[0] == uid]:
                self._said.pop(key)


def transitions(
    said: Announcements,
    uid: str,
    status: Mapping[str, Any],
    conditions: list[st.Cond],
) -> list[engine.Event]:
    """Events for what just happened once: a rollback the circuit breaker made."""
    events = []
    for cond in conditions:
        if cond.type != engine.ROLLOUT:
            continue
        previous = st.find(status.get("conditions") or [], engine.ROLLOUT) or {}
        new = said.first_time(uid, engine.ROLLOUT, cond.reason)
        rolled_back = cond.reason == reasons.ROLLED_BACK
        if rolled_back and new and previous.get("reason") != reasons.ROLLED_BACK:
            events.append(engine.Event("Warning", reasons.ROLLED_BACK, cond.message))
    return events


def moment(value: object) -> datetime | None:
    """An RFC 3339 timestamp as Kubernetes writes it, else None; naive means UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _progress(annotations: Mapping[str, str]) -> list[dict[str, Any]]:
    """kopf's progress records of the reconcile handler (one per cause it ran for)."""
    records = []
    for key, value in annotations.items():
        if not key.startswith(PROGRESS_PREFIX):
            continue
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def live_handler(annotations: Mapping[str, str], *, now: datetime, grace: float) -> bool:
    """Whether kopf has a reconcile handler under way: not done, and active or due lately.

    A record kopf abandoned (see `unhandled`) stays in the annotations; one that has not
    run nor been due for `grace` seconds is not "under way" any more.
    """
    for record in _progress(annotations):
        if record.get("success") or record.get("failure"):
            continue
        moments = [m for m in (moment(record.get("started")), moment(record.get("delayed"))) if m]
        if moments and (now - max(moments)).total_seconds() <= grace:
            return True
    return False


def unhandled(
    annotations: Mapping[str, str],
    status: Mapping[str, Any],
    generation: int | None,
    *,
    created: str | None,
    now: datetime,
    grace: float,
) -> bool:
    """Whether the environment needs a pass that no handler will make.

    kopf compares a new spec with the last one it *finished* handling: a change that
    reverts an unfinished one (suspend, then resume before the suspend settled) looks like
    no change at all, the unfinished handler is dropped, and nothing would reconcile the
    spec until it changes again. Likewise nothing polls a service the drift check scaled
    back until it is ready. So: a generation not yet observed, or a Ready condition still
    Progressing (or a provision not Ready), with no live handler (`live_handler`) and
    older than `grace`.
    """
    if generation is None:
        return False
    ready = st.find(status.get("conditions") or [], st.READY) or {}
    behind = status.get("observedGeneration") != generation
    converging = ready.get("reason") == reasons.PROGRESSING and status.get("phase") in SETTLED
    # Provisioning (or in line for a slot), yet no handler comes back: kopf dropped the
    # retry (seen under CPU starvation, after a handler re-ran on an event older than its
    # own status patch; see handlers.configure).
    provisioning = ready.get("status") != st.TRUE and status.get("phase") in (
        Phase.PENDING_PROVISIONING.value, Phase.PROVISIONING.value)
    converging = converging or provisioning
    if not (behind or converging):
        return False
    born = moment(created)
    if born is not None and (now - born).total_seconds() <= grace:
        return False
    return not live_handler(annotations, now=now, grace=grace)
