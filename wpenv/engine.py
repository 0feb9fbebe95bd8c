"""The engine: walks the resources in order to converge an environment, or roll it back.

Level-based: every pass reads what exists, compares with the desired state and acts only
on a difference, so a pass after a crash, a restart or a hand-made change ends in the same
place as an uninterrupted one. The engine owns policy (order, rollback, backoff, what the
status says); the resource modules only observe, create, update and delete.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql

from wpenv import aws, kube, reasons
from wpenv.api.models import Phase, ResourceIds, parse_spec
from wpenv.archive.hooks import Everyday, Hooks, Note
from wpenv.conditions import FALSE, READY, TRUE, Cond
from wpenv.crashpoints import CREATED, RECORDED, armed, crashpoint
from wpenv.errors import PermanentError, TransientError
from wpenv.plan import TAG_TENANT, names_for, tags_for
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import Context, Facts, Observation, Resource
from wpenv.settings import Settings

log = logging.getLogger(__name__)

# Condition types in the order `kubectl describe` shows them.
GROUPS = ("Identity", "Storage", "Network", "Permissions", "Database", "Compute", "Routing")

# What a kind that holds data runs before it may be deleted (`Resource.archive` names it):
# it archives and verifies, or raises, and then nothing is deleted. Unless told otherwise,
# a pass archives what holds data to a fresh prefix (rollback, identity switched off).
EVERYDAY: Hooks = Everyday().hooks()
NO_HOOK = "{kind} holds the tenant's data and no {hook!r} archive step is configured"


def default_resources() -> list[Resource]:
    """Every kind, in creation order (see wpenv.reconcilers.registry)."""
    return registry.kinds()


def make_context(
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
    *,
    settings: Settings,
    clients: Any,
    ids: Mapping[str, Any] | None = None,
    record: Callable[[Mapping[str, Any]], None] | None = None,
) -> Context:
    """The Context for one pass over one environment."""
    parsed = parse_spec(dict(spec))
    ctx = Context(
        namespace=namespace,
        name=name,
        spec=parsed,
        names=names_for(namespace, name, parsed.tenant_id),
        tags=tags_for(namespace, name, parsed.tenant_id, settings),
        settings=settings,
        clients=clients,
        ids={k: v for k, v in (ids or {}).items() if v is not None},
    )
    if record is not None:
        ctx.record = record
    return ctx


@dataclass
class Event:
    """A Kubernetes Event to post on the custom resource."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Outcome:
    """What one pass found and did; the handler turns it into status, Events and a requeue."""

    conditions: list[Cond] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    ready: bool = False
    # Transient trouble or still converging: come back after this many seconds.
    retry_after: float | None = None
    # The pass stopped on transient trouble (not merely waiting for a rollout).
    troubled: bool = False
    # Permanent trouble: what a person must fix. Set only after rollback (if any) finished.
    failure: PermanentError | None = None
    facts: Facts | None = None
    # The pass created or changed something (the next look comes soon: `poll_delay`).
    acted: bool = False


def classify(exc: BaseException) -> TransientError | PermanentError:
    """Every error is either worth another pass or needs a person; nothing in between."""
    if isinstance(exc, TransientError | PermanentError):
        return exc
    if isinstance(exc, pymysql.err.OperationalError):
        return TransientError(reasons.DATABASE_UNREACHABLE, "the shared database did not answer")
    code = aws.error_code(exc)
    if aws.is_transient(exc):
        return TransientError(reasons.AWS_RETRYING, f"AWS answered {code or type(exc).__name__}")
    if not code and kube.unavailable(exc):
        # Not a refusal: the API server restarting, or briefly unreachable. Never a
        # rollback: the next pass finds what this one made (its ids in AWS's names).
        return TransientError(reasons.KUBERNETES_UNAVAILABLE,
                              f"the Kubernetes API did not answer ({type(exc).__name__})")
    if not code and kube.gone(exc):
        return TransientError(reasons.ENVIRONMENT_GONE,
                              "the environment's object is no longer in the Kubernetes API")
    if code:
        # The AWS message says which parameter or quota; it never carries our secrets.
        detail = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))[:300]
        return PermanentError(code, f"AWS refused the request ({code}): {detail}")
    return PermanentError(reasons.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:300])


def backoff(attempt: int, settings: Settings) -> float:
    """Exponential backoff with full jitter, capped (AWS architecture blog's advice)."""
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** min(attempt, 16))
    return max(settings.retry_base_seconds, random.uniform(0, ceiling))  # noqa: S311


POLL_SECONDS = 3.0
# The first look after a pass that created or changed something: a rollout the pass just
# started may be done in a moment. Each look that still waits doubles the next delay, up
# to POLL_SECONDS (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3, 3...): a change that settles at once
# is seen at once, and a rollout of minutes costs five more passes than polling at
# POLL_SECONDS. Those early passes are cheap: what has settled comes from the observation
# cache, so each reads again only what still waits (the service's rollout, mostly). At
# 0.2 s the first look was most of the operator's overhead on one environment whose
# rollout is done at once (bench/overhead.py: 0.24 s of 1.1 s).
FIRST_POLL_SECONDS = 0.05


def poll_delay(waited: int) -> float:
    """Seconds until the next look, after `waited` passes in a row that only waited."""
    return min(POLL_SECONDS, FIRST_POLL_SECONDS * float(2 ** min(waited, 16)))

# status.resources keys, derived from the model so a rollback clears every one of them.
RESOURCE_KEYS = tuple(f.alias or n for n, f in ResourceIds.model_fields.items())
WAITING = "{kind} waits for {needs}"
Seen = dict[str, Observation]


def _require(resource: Resource, seen: Seen) -> None:
    """The engine's check of declared dependencies before anything is created."""
    missing = [need for need in resource.needs if need in seen and not seen[need].exists]
    if missing:
        raise TransientError(
            reasons.WAITING_FOR_DEPENDENCIES,
            WAITING.format(kind=resource.kind, needs=", ".join(missing)),
        )


def step(ctx: Context, resource: Resource, seen: Seen, out: Outcome) -> Observation:
    """Observe one resource, then create or update it when it differs; what it is now."""
    observed = resource.observe(ctx)
    if not observed.exists:
        _require(resource, seen)
        resource.create(ctx, observed)
        crashpoint(CREATED, resource.kind)
        out.events.append(Event("Normal", reasons.CREATED, f"{resource.kind} created"))
        observed = resource.observe(ctx)
    elif not observed.up_to_date:
        resource.update(ctx, observed)
        out.events.append(Event("Normal", reasons.UPDATED, f"{resource.kind} updated"))
        observed = resource.observe(ctx)
    ctx.remember(observed.ids)
    if armed(RECORDED, resource.kind) and isinstance(ctx.record, WriteBehind):
        ctx.record.flush()  # this kill point promises the ids are in the status
    crashpoint(RECORDED, resource.kind)
    if observed.facts is not None and observed.facts.rollout_state == "FAILED":
        # A first deployment that failed has nothing to roll back to: waiting will not
        # help, so it is permanent (a failed update is rolled back by ECS and reported by
        # the service module instead).
        raise PermanentError(reasons.DEPLOYMENT_FAILED, observed.detail or "rollout failed")
    return observed


class WriteBehind:
    """The identifiers a pass records, written to the status in one patch at its end.

    Recording each one at once cost a status patch per resource (some 20 a provision),
    each also a watch event kopf had to look at. A pass cut short before its end (a
    crash) leaves the status without what it made, as a kill between a create and its
    record always could: every kind finds its resource again by name or tag.
    """

    def __init__(self, write: Callable[[Mapping[str, Any]], None]) -> None:
        self.write = write
        self.pending: dict[str, Any] = {}

    def __call__(self, ids: Mapping[str, Any]) -> None:
        """Keep `ids` for the end of the pass (later values win, as patches would)."""
        self.pending.update(ids)

    def flush(self) -> None:
        """Write what is pending, in one patch."""
        if self.pending:
            ids, self.pending = self.pending, {}
            self.write(ids)


def converge(
    ctx: Context,
    resources: Sequence[Resource],
    *,
    attempt: int = 0,
    may_roll_back: bool = True,
    hooks: Hooks | None = None,
    waited: int = 0,
) -> Outcome:
    """`_converge`, recording the pass's identifiers in the status once, at its end.

    Should that write fail (the API server restarting), the pass is troubled and not
    ready, whatever it found: nothing is rolled back, the next pass finds what this one
    made by name and records it then.
    """
    immediate = ctx.record
    behind = ctx.record = WriteBehind(immediate)
    try:
        out = _converge(ctx, resources, attempt=attempt, may_roll_back=may_roll_back,
                        hooks=hooks, waited=waited)
    finally:
        ctx.record = immediate
    try:
        behind.flush()
    except Exception as exc:
        error = classify(exc)
        if not isinstance(error, TransientError):
            raise
        log.info("Recording the resources of %s failed: %s", ctx.name, error)
        out.ready, out.troubled = False, True
        out.conditions = [c for c in out.conditions if c.type != READY]
        out.conditions.append(Cond(READY, FALSE, error.reason, f"recording resources: {error}"))
        out.retry_after = backoff(attempt, ctx.settings)
    return out


def _converge(
    ctx: Context,
    resources: Sequence[Resource],
    *,
    attempt: int,
    may_roll_back: bool,
    hooks: Hooks | None,
    waited: int,
) -> Outcome:
    """One level-based pass: observe each resource in order, create or update what differs.

    Resources the spec does not want (`Resource.wanted`) are removed after the others
    converged, by the same teardown as everything else (newest first, archive hooks
    first): a suspended service is scaled to zero before its rule goes, a task definition
    drops the SSO settings before the Cognito pieces go.

    On a permanent error during first provisioning (`may_roll_back`), everything this
    environment owns is torn down before Failed is reported, so a failed provision leaves
    nothing behind. An environment that was Active is never torn down by a failed change:
    it keeps serving and reports the problem.
    """
    out = Outcome()
    seen: Seen = {}
    unwanted: list[Resource] = []
    for index, resource in enumerate(resources):
        try:
            if not resource.wanted(ctx):
                unwanted.append(resource)
                continue
            seen[resource.kind] = step(ctx, resource, seen, out)
        except Exception as exc:
            _fail(ctx, out, resource, exc, created=resources[: index + 1], attempt=attempt,
                  may_roll_back=may_roll_back, hooks=hooks)
            return out
        out.facts = seen[resource.kind].facts or out.facts
    def switched_off(resource: Resource, observed: Observation, note: Note | None) -> None:
        seen[resource.kind] = ABSENT
        _tell(out, note)
        if observed.exists:
            out.events.append(
                Event("Normal", reasons.REMOVED, f"{resource.kind} removed: the spec turns it off")
            )

    try:
        tear_down(ctx, unwanted, hooks, switched_off)
    except TeardownError as exc:
        _fail(ctx, out, exc.resource, exc.cause, created=(), attempt=attempt,
              may_roll_back=False, hooks=hooks)
        return out
    _summarise(out, [(r, seen[r.kind]) for r in resources if r.kind in seen], waited)
    return out


def _summarise(
    out: Outcome, observed: Sequence[tuple[Resource, Observation]], waited: int = 0
) -> None:
    """One condition per resource group, and Ready, from what the pass observed.

    `waited`: passes in a row before this one that only waited (the next look's delay).
    """
    out.acted = any(e.reason in (reasons.CREATED, reasons.UPDATED) for e in out.events)
    by_group: dict[str, list[tuple[str, Observation]]] = {}
    for resource, obs in observed:
        by_group.setdefault(resource.group, []).append((resource.kind, obs))
    pending = []
    for group, items in by_group.items():
        waiting = [f"{kind}: {obs.detail or 'not ready'}" for kind, obs in items if not obs.ready]
        if waiting:
            pending.extend(waiting)
            out.conditions.append(Cond(group, FALSE, reasons.PROGRESSING, "; ".join(waiting)))
            continue
        present = ", ".join(kind for kind, obs in items if obs.exists)
        absent = ", ".join(kind for kind, obs in items if not obs.exists)
        message = "; ".join(
            part
            for part in (f"{present} in place" if present else "",
                         f"{absent} off as the spec asks" if absent else "")
            if part
        )
        out.conditions.append(Cond(group, TRUE, reasons.READY, message))
    out.ready = not pending
    if out.ready:
        out.conditions.append(
            Cond(READY, TRUE, reasons.ACTIVE, "All resources are in place and serving")
        )
    else:
        out.conditions.append(Cond(READY, FALSE, reasons.PROGRESSING, "; ".join(pending)))
        out.retry_after = poll_delay(0 if out.acted else waited + 1)


# A resource the spec switched off and that is gone: nothing to wait for.
ABSENT = Observation(exists=False, up_to_date=True, ready=True)


class TeardownError(Exception):
    """A teardown stopped at `resource`; what is left is deleted by the next attempt."""

    def __init__(self, resource: Resource, cause: Exception) -> None:
        super().__init__(f"{resource.kind}: {cause}")
        self.resource = resource
        self.cause = cause


Removed = Callable[[Resource, Observation, Note | None], None]


def _tell(out: Outcome, note: Note | None) -> None:
    if note is not None:
        out.events.append(Event("Normal", note.reason, note.message))


def tear_down(
    ctx: Context,
    resources: Sequence[Resource],
    hooks: Hooks | None = None,
    on_removed: Removed | None = None,
) -> list[str]:
    """The one teardown: newest first, each kind's archive hook before its delete.

    Rollback, removing what the spec switched off, deprovisioning and the orphan cleanup
    all come here, so the deletion order is the creation order reversed, everywhere. A
    kind that holds data (`Resource.archive`) is deleted only after its hook returned; the
    hook is asked even when the kind looks gone, because the data (a directory, a
    database) can outlive it. What observe did not find is not deleted (a kind may find a
    remnant that does not count as existing, e.g. a secret scheduled for deletion, and gets
    it to delete). Raises TeardownError; the kinds of what existed otherwise.
    """
    hooks = EVERYDAY if hooks is None else hooks
    removed = []
    for resource in reversed(resources):
        note = None
        try:
            observed = resource.observe(ctx)
            if resource.archive:
                hook = hooks.get(resource.archive)
                if hook is None:
                    raise PermanentError(
                        reasons.ARCHIVE_STEP_MISSING, NO_HOOK.format(kind=resource.kind,
                                                             hook=resource.archive)
                    )
                note = hook(ctx, resource, observed)
            if observed.exists or observed.found is not None:
                resource.delete(ctx, observed)
        except Exception as exc:
            raise TeardownError(resource, exc) from exc
        ctx.forget(resource.ids)
        if observed.exists:
            removed.append(resource.kind)
        if on_removed is not None:
            on_removed(resource, observed, note)
    return removed


def _fail(
    ctx: Context,
    out: Outcome,
    resource: Resource,
    exc: Exception,
    *,
    created: Sequence[Resource],
    attempt: int,
    may_roll_back: bool,
    hooks: Hooks | None,
) -> None:
    """Record a failed step: retry later, or roll back (first provisioning) and report."""
    error = classify(exc)
    if isinstance(error, TransientError):
        log.info("Transient trouble with %s: %s", resource.kind, error)
        out.troubled = True
        out.conditions.append(Cond(resource.group, FALSE, error.reason, str(error)))
        out.conditions.append(Cond(READY, FALSE, error.reason, f"{resource.kind}: {error}"))
        out.retry_after = backoff(attempt, ctx.settings)
        return
    log.warning("Permanent failure at %s: %s", resource.kind, error)
    out.events.append(Event("Warning", error.reason, f"{resource.kind}: {error}"))
    if may_roll_back and not roll_back(ctx, created, out, hooks):
        out.retry_after = backoff(attempt, ctx.settings)
        out.conditions.append(Cond(READY, FALSE, reasons.ROLLING_BACK, f"{resource.kind}: {error}"))
        return
    out.failure = PermanentError(error.reason, f"{resource.kind}: {error}")
    out.conditions.append(Cond(resource.group, FALSE, error.reason, str(error)))
    out.conditions.append(Cond(READY, FALSE, error.reason, str(out.failure)))


def roll_back(
    ctx: Context, created: Sequence[Resource], out: Outcome, hooks: Hooks | None = None
) -> bool:
    """Tear down everything the environment owns; False if it must be retried."""

    def rolled_back(resource: Resource, observed: Observation, note: Note | None) -> None:
        _tell(out, note)
        out.events.append(Event("Normal", reasons.ROLLED_BACK, f"{resource.kind} removed"))

    try:
        tear_down(ctx, created, hooks, rolled_back)
    except TeardownError as exc:
        error = classify(exc.cause)
        log.warning("Rollback of %s must be retried: %s", exc.resource.kind, error)
        out.events.append(
            Event("Warning", reasons.ROLLBACK_RETRYING, f"{exc.resource.kind}: {error}")
        )
        return False
    for key in list(ctx.ids):
        ctx.ids.pop(key)
    ctx.record(dict.fromkeys(RESOURCE_KEYS))
    return True


ROLLOUT = "Rollout"


def _revision(arn: object) -> str:
    """`family:revision` of a task definition ARN, for messages people read."""
    return str(arn).rpartition("/")[2] or str(arn)


def rollout_condition(facts: Facts | None) -> Cond | None:
    """The Rollout condition from the service's facts; None before a service exists.

    A revision the circuit breaker rolled back is reported as RolledBack while the previous
    revision keeps serving (Ready stays True): the update the user asked for did not
    happen, and Argo CD shows the environment Degraded until the spec changes.
    """
    if facts is None or not facts.rollout_state:
        return None
    serving = _revision(facts.serving)
    if facts.rolled_back_from:
        return Cond(
            ROLLOUT,
            FALSE,
            reasons.ROLLED_BACK,
            f"{_revision(facts.rolled_back_from)} failed to start and ECS rolled back; "
            f"{serving} keeps serving. Change the spec (e.g. the image) to try again",
        )
    if facts.rollout_state == "COMPLETED":
        return Cond(ROLLOUT, TRUE, reasons.COMPLETED, f"{serving} is rolled out")
    if facts.rollout_state == "FAILED":
        return Cond(ROLLOUT, FALSE, reasons.FAILED, f"the deployment of {serving} failed")
    return Cond(
        ROLLOUT, FALSE, reasons.IN_PROGRESS,
        f"rolling out {serving}: {facts.running}/{facts.desired} tasks running",
    )


def selector(ctx: Context) -> str:
    """The label selector the scale subresource reports (kubectl scale needs one)."""
    return f"{TAG_TENANT}={ctx.spec.tenant_id}"


__all__ = [
    "GROUPS",
    "Event",
    "Outcome",
    "Phase",
    "backoff",
    "classify",
    "converge",
    "default_resources",
    "make_context",
    "roll_back",
    "rollout_condition",
    "tear_down",
]
