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

from wpenv import aws
from wpenv.api.models import Phase, ResourceIds, parse_spec
from wpenv.conditions import FALSE, READY, TRUE, Cond
from wpenv.plan import TAG_TENANT, names_for, tags_for
from wpenv.reconcilers.base import (
    Context,
    Observation,
    PermanentError,
    Resource,
    TransientError,
    is_wanted,
)
from wpenv.settings import Settings

log = logging.getLogger(__name__)

# Condition types in the order `kubectl describe` shows them.
GROUPS = ("Identity", "Storage", "Network", "Permissions", "Database", "Compute", "Routing")


def default_resources() -> list[Resource]:
    """The resources of one environment, in creation order (rollback runs it backwards).

    The HLD orders: access point, database, secret, task definition, service, ALB. Two
    deliberate differences, both invisible from outside:
    - the secret precedes the database: the password is born in Secrets Manager, so a crash
      between the two steps never leaves a MySQL user whose password nobody knows;
    - the target group and rule precede the service: ECS refuses a service whose target
      group is not yet attached to a load balancer.
    The security group and task role come first among their peers because the service and
    the task definition name them.

    The Cognito pieces (HLD 3.3: pool, groups, domain, app client, client secret) come
    before everything else, a third difference: a user pool is the one resource with a
    small account quota (HLD 8), and an environment that waits for a free pool must not hold
    half-built resources meanwhile; and the task definition names the client secret.
    Switching identity off removes them after the task definition dropped its SSO settings.
    """
    from wpenv.reconcilers.access_point import AccessPoint  # noqa: PLC0415
    from wpenv.reconcilers.autoscaling import Autoscaling  # noqa: PLC0415
    from wpenv.reconcilers.client_secret import ClientSecret  # noqa: PLC0415
    from wpenv.reconcilers.database import Database  # noqa: PLC0415
    from wpenv.reconcilers.db_secret import DatabaseSecret  # noqa: PLC0415
    from wpenv.reconcilers.listener_rule import ListenerRule  # noqa: PLC0415
    from wpenv.reconcilers.security_group import SecurityGroup  # noqa: PLC0415
    from wpenv.reconcilers.service import Service  # noqa: PLC0415
    from wpenv.reconcilers.target_group import TargetGroup  # noqa: PLC0415
    from wpenv.reconcilers.task_definition import TaskDefinition  # noqa: PLC0415
    from wpenv.reconcilers.task_role import TaskRole  # noqa: PLC0415
    from wpenv.reconcilers.user_pool import UserPool  # noqa: PLC0415
    from wpenv.reconcilers.user_pool_client import UserPoolClient  # noqa: PLC0415
    from wpenv.reconcilers.user_pool_domain import UserPoolDomain  # noqa: PLC0415
    from wpenv.reconcilers.user_pool_groups import UserPoolGroups  # noqa: PLC0415

    return [
        UserPool(),
        UserPoolGroups(),
        UserPoolDomain(),
        UserPoolClient(),
        ClientSecret(),
        AccessPoint(),
        SecurityGroup(),
        TaskRole(),
        DatabaseSecret(),
        Database(),
        TaskDefinition(),
        TargetGroup(),
        ListenerRule(),
        Service(),
        Autoscaling(),
    ]


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
    facts: dict[str, Any] = field(default_factory=dict)


def classify(exc: BaseException) -> TransientError | PermanentError:
    """Every error is either worth another pass or needs a person; nothing in between."""
    if isinstance(exc, TransientError | PermanentError):
        return exc
    if isinstance(exc, pymysql.err.OperationalError):
        return TransientError("DatabaseUnreachable", "the shared database did not answer")
    code = aws.error_code(exc)
    if aws.is_transient(exc):
        return TransientError("AwsRetrying", f"AWS answered {code or type(exc).__name__}")
    if code:
        # The AWS message says which parameter or quota; it never carries our secrets.
        detail = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))[:300]
        return PermanentError(code, f"AWS refused the request ({code}): {detail}")
    return PermanentError("InternalError", f"{type(exc).__name__}: {exc}"[:300])


def backoff(attempt: int, settings: Settings) -> float:
    """Exponential backoff with full jitter, capped (AWS architecture blog's advice)."""
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** min(attempt, 16))
    return max(settings.retry_base_seconds, random.uniform(0, ceiling))  # noqa: S311


POLL_SECONDS = 3.0
# status.resources keys, derived from the model so a rollback clears every one of them.
RESOURCE_KEYS = tuple(f.alias or n for n, f in ResourceIds.model_fields.items())


def converge(
    ctx: Context,
    resources: Sequence[Resource],
    *,
    attempt: int = 0,
    may_roll_back: bool = True,
) -> Outcome:
    """One level-based pass: observe each resource in order, create or update what differs.

    Resources the spec does not want (`is_wanted`) are removed after the others converged,
    newest first: a suspended service is scaled to zero before its rule goes, a task
    definition drops the SSO settings before the Cognito pieces go.

    On a permanent error during first provisioning (`may_roll_back`), everything this
    environment owns is deleted in reverse order before Failed is reported, so a failed
    provision leaves nothing behind. An environment that was Active is never torn down by
    a failed change: it keeps serving and reports the problem.
    """
    out = Outcome()
    by_group: dict[str, list[tuple[str, Observation]]] = {}
    unwanted: list[Resource] = []
    for index, resource in enumerate(resources):
        try:
            if not is_wanted(resource, ctx):
                unwanted.append(resource)
                continue
            observed = resource.observe(ctx)
            if not observed.exists:
                resource.create(ctx)
                out.events.append(Event("Normal", "Created", f"{resource.kind} created"))
                observed = resource.observe(ctx)
            elif not observed.up_to_date:
                resource.update(ctx, observed)
                out.events.append(Event("Normal", "Updated", f"{resource.kind} updated"))
                observed = resource.observe(ctx)
            ctx.remember(observed.ids)
            if observed.facts.get("rolloutState") == "FAILED":
                # A first deployment that failed has nothing to roll back to: waiting will
                # not help, so it is permanent (a failed update is rolled back by ECS and
                # reported by the service module instead).
                raise PermanentError("DeploymentFailed", observed.detail or "rollout failed")
        except Exception as exc:
            _fail(ctx, out, resource, exc, created=resources[: index + 1], attempt=attempt,
                  may_roll_back=may_roll_back)
            return out
        by_group.setdefault(resource.group, []).append((resource.kind, observed))
        out.facts.update(observed.facts)

    for resource in reversed(unwanted):
        try:
            observed = resource.observe(ctx)
            if observed.exists:
                resource.delete(ctx)
                ctx.forget(observed.ids)
                out.events.append(
                    Event("Normal", "Removed", f"{resource.kind} removed: the spec turns it off")
                )
        except Exception as exc:
            _fail(ctx, out, resource, exc, created=(), attempt=attempt, may_roll_back=False)
            return out
        by_group.setdefault(resource.group, []).append((resource.kind, ABSENT))

    pending = []
    for group, items in by_group.items():
        waiting = [f"{kind}: {obs.detail or 'not ready'}" for kind, obs in items if not obs.ready]
        if waiting:
            pending.extend(waiting)
            out.conditions.append(Cond(group, FALSE, "Progressing", "; ".join(waiting)))
            continue
        present = ", ".join(kind for kind, obs in items if obs.exists)
        absent = ", ".join(kind for kind, obs in items if not obs.exists)
        message = "; ".join(
            part
            for part in (f"{present} in place" if present else "",
                         f"{absent} off as the spec asks" if absent else "")
            if part
        )
        out.conditions.append(Cond(group, TRUE, "Ready", message))
    out.ready = not pending
    if out.ready:
        out.conditions.append(Cond(READY, TRUE, "Active", "All resources are in place and serving"))
    else:
        out.conditions.append(Cond(READY, FALSE, "Progressing", "; ".join(pending)))
        out.retry_after = POLL_SECONDS
    return out


# A resource the spec switched off and that is gone: nothing to wait for.
ABSENT = Observation(exists=False, up_to_date=True, ready=True)


def _fail(
    ctx: Context,
    out: Outcome,
    resource: Resource,
    exc: Exception,
    *,
    created: Sequence[Resource],
    attempt: int,
    may_roll_back: bool,
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
    if may_roll_back and not roll_back(ctx, created, out):
        out.retry_after = backoff(attempt, ctx.settings)
        out.conditions.append(Cond(READY, FALSE, "RollingBack", f"{resource.kind}: {error}"))
        return
    out.failure = PermanentError(error.reason, f"{resource.kind}: {error}")
    out.conditions.append(Cond(resource.group, FALSE, error.reason, str(error)))
    out.conditions.append(Cond(READY, FALSE, error.reason, str(out.failure)))


def roll_back(ctx: Context, created: Sequence[Resource], out: Outcome) -> bool:
    """Delete, newest first, everything the environment owns; False if it must be retried."""
    for resource in reversed(created):
        try:
            resource.delete(ctx)
        except Exception as exc:
            error = classify(exc)
            log.warning("Rollback of %s must be retried: %s", resource.kind, error)
            out.events.append(Event("Warning", "RollbackRetrying", f"{resource.kind}: {error}"))
            return False
        out.events.append(Event("Normal", "RolledBack", f"{resource.kind} removed"))
    for key in list(ctx.ids):
        ctx.ids.pop(key)
    ctx.record(dict.fromkeys(RESOURCE_KEYS))
    return True


ROLLOUT = "Rollout"


def _revision(arn: object) -> str:
    """`family:revision` of a task definition ARN, for messages people read."""
    return str(arn).rpartition("/")[2] or str(arn)


def rollout_condition(facts: Mapping[str, Any]) -> Cond | None:
    """The Rollout condition from the service's facts; None before a service exists.

    A revision the circuit breaker rolled back is reported as RolledBack while the previous
    revision keeps serving (Ready stays True): the update the user asked for did not
    happen, and Argo CD shows the environment Degraded until the spec changes.
    """
    if "rolloutState" not in facts:
        return None
    serving = _revision(facts.get("serving"))
    if facts.get("rolledBackFrom"):
        return Cond(
            ROLLOUT,
            FALSE,
            "RolledBack",
            f"{_revision(facts['rolledBackFrom'])} failed to start and ECS rolled back; "
            f"{serving} keeps serving. Change the spec (e.g. the image) to try again",
        )
    state = facts.get("rolloutState")
    if state == "COMPLETED":
        return Cond(ROLLOUT, TRUE, "Completed", f"{serving} is rolled out")
    if state == "FAILED":
        return Cond(ROLLOUT, FALSE, "Failed", f"the deployment of {serving} failed")
    running, desired = facts.get("runningCount", 0), facts.get("desiredCount", 0)
    return Cond(
        ROLLOUT, FALSE, "InProgress", f"rolling out {serving}: {running}/{desired} tasks running"
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
]
