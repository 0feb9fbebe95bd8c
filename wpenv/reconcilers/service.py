"""The tenant's ECS service: runs the task definition on Fargate behind its target group.

The service is what makes an environment serve, so it is ready only when ECS says so
three ways: the running count reached the desired count, the PRIMARY deployment's rollout
COMPLETED, and the ALB sees as many healthy targets. Deployments use the circuit breaker
with rollback (HLD 4): a revision whose tasks never start is rolled back by ECS itself;
observe reports that (`Facts.rolled_back_from`, when the revision that failed is the one
the spec wants) and counts the service as settled: it serves the previous revision, and
deploying the very revision that failed again cannot help; only a new spec can. The
status says so in its Rollout condition instead of retrying forever. To tell a
rollback from a service that simply has not been updated yet, every deployment we ask
for is written to a service tag.

Tasks read the database password once, when they start (the task definition's `secrets`),
so a rotation of the database secret (Secrets Manager's, every 30 days) reaches them only
through new tasks. Each deployment we start is tagged with the secret version AWSCURRENT
was on (`dbSecretVersion`, recorded by the DatabaseSecret step); when the recorded version
moves on, update forces a new deployment (`secret_rollout`), which replaces the tasks the
usual way: new ones healthy first, then the old ones drained.

What observe finds is the described service (DescribeServices, with tags), in any status:
a DRAINING one (deleted a moment ago) does not exist for the engine but keeps create from
making a new one too early. `remove` also drops the service's scalable target, so the
orphan cleanup leaves no scaler pointing at nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons
from wpenv.api.models import GROUP
from wpenv.errors import TransientError
from wpenv.plan import TAG_MANAGED_BY, tag_dict
from wpenv.reconcilers.base import Context, Facts, Found, Observation, Resource
from wpenv.reconcilers.db_secret import VERSION as SECRET_VERSION
from wpenv.settings import Settings

log = logging.getLogger(__name__)

WAITING_FOR = "the service needs {missing} recorded first"
DRAINING_MESSAGE = "service {name} is still draining after a delete; it can be re-created later"
ROLLED_BACK_MESSAGE = (
    "the deployment of {arn} failed and ECS rolled the service back to {current}; "
    "change the spec (e.g. the image) to try again"
)
NOT_READY = "running {running}/{desired}, rollout {rollout}, healthy targets {healthy}"
# ECS says why tasks did not start in the service's events ("... Reason: <the task's
# stopped reason, e.g. CannotPullContainerError: ...>."); failing that, the deployment's
# rolloutStateReason (the circuit breaker's words).
REASON_MARK = "Reason: "
# The shared cache's key for a service's healthy-target count (kept, see Service._healthy),
# and how long an all-healthy count is kept while the service shows the same tasks.
HEALTH = "elasticloadbalancing:DescribeTargetHealth"
HEALTH_KEPT_SECONDS = 300.0
MAX_REASON = 500
FAILED_BECAUSE = "{detail}; {why}"
STALE = "service runs {current} with {count} tasks; the plan wants {wanted} with {want_count}"

# The deployment we last asked for; a service on another one was rolled back.
TAG_REQUESTED = f"wpenv.{GROUP}/task-definition"
# The database secret version the service's tasks started with (see the docstring).
TAG_SECRET_VERSION = f"wpenv.{GROUP}/db-secret-version"
ROLL = "roll"  # secret_rollout: force a new deployment
TAG_ONLY = "tag"  # secret_rollout: only record the version
STALE_TASKS = "service tasks started with database secret version {have}; {current} is current"
PLATFORM_VERSION = "1.4.0"  # EFS volumes need Fargate platform 1.4.0 or later (HLD 8)
GRACE_SECONDS = 120
GONE_CODES = frozenset(
    {"ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException"}
)
# CreateService for a name that is taken (another client token, or still DRAINING).
NOT_IDEMPOTENT = "InvalidParameterException"
TARGET_GROUP_GONE = "TargetGroupNotFound"
SCALER_GONE = "ObjectNotFoundException"
SERVICES_PER_CALL = 10  # DescribeServices takes at most ten
SCALING_NAMESPACE = "ecs"
ACTIVE = "ACTIVE"
DRAINING = "DRAINING"  # deleted, its tasks still stopping: its name is not free yet


# The shared cache's listing of the cluster's services (wpenv.reconcilers.observations).
LISTED = "ecs:DescribeServices"
SERVICES_PER_CALL = 10


def _require(ctx: Context, *keys: str) -> list[str]:
    missing = [key for key in keys if not ctx.ids.get(key)]
    if missing:
        raise TransientError(
            reasons.WAITING_FOR_DEPENDENCIES, WAITING_FOR.format(missing=", ".join(missing))
        )
    return [str(ctx.ids[key]) for key in keys]


def secret_rollout(tags: Mapping[str, str], current: str | None, desired: int) -> str | None:
    """What a service needs for the secret version its tasks hold (no I/O).

    ROLL when the tasks started with another version than the current one, TAG_ONLY when
    there is nothing to replace (no tasks wanted) or nothing is known of them (a service
    from before versions were tagged: it is taken to hold the current one), else None.
    """
    if not current:
        return None
    held = tags.get(TAG_SECRET_VERSION)
    if held == current:
        return None
    return ROLL if held and desired > 0 else TAG_ONLY


def desired_count(ctx: Context) -> int:
    """Tasks the service should run: none while suspended, else the spec's replicas."""
    return 0 if ctx.spec.suspended else ctx.spec.replicas


def count_matches(ctx: Context, actual: int) -> bool:
    """Whether `actual` tasks is what the plan wants; the scaler owns the count in its range."""
    scaling = ctx.spec.autoscaling
    if scaling is not None and not ctx.spec.suspended:
        return scaling.min_replicas <= actual <= scaling.max_replicas
    return actual == desired_count(ctx)


def client_token(ctx: Context, task_definition_arn: str, count: int) -> str:
    """Same request, same token: a retried CreateService cannot make a second service."""
    seed = f"{ctx.settings.cluster_name}/{ctx.names.service}/{task_definition_arn}/{count}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def desired_service(ctx: Context) -> dict[str, Any]:
    """The `CreateService` arguments for this tenant (no I/O).

    Raises TransientError(WaitingForDependencies) until the task definition, the security
    group and the target group are recorded.
    """
    task_definition, security_group, target_group = _require(
        ctx, "taskDefinitionArn", "securityGroupId", "targetGroupArn"
    )
    count = desired_count(ctx)
    return {
        "cluster": ctx.settings.cluster_name,
        "serviceName": ctx.names.service,
        "taskDefinition": task_definition,
        "desiredCount": count,
        "launchType": "FARGATE",
        "platformVersion": PLATFORM_VERSION,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(ctx.settings.private_subnet_ids),
                "securityGroups": [security_group],
                "assignPublicIp": "DISABLED",
            }
        },
        "loadBalancers": [
            {
                "targetGroupArn": target_group,
                "containerName": ctx.names.container,
                "containerPort": ctx.settings.container_port,
            }
        ],
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
        "healthCheckGracePeriodSeconds": GRACE_SECONDS,
        "propagateTags": "SERVICE",
        "enableECSManagedTags": True,
        "tags": [
            *({"key": k, "value": v} for k, v in ctx.tags.items()),
            {"key": TAG_REQUESTED, "value": task_definition},
            *([{"key": TAG_SECRET_VERSION, "value": str(ctx.ids[SECRET_VERSION])}]
              if ctx.ids.get(SECRET_VERSION) else []),
        ],
        "clientToken": client_token(ctx, task_definition, count),
    }


@dataclass(frozen=True)
class Rollout:
    """The deployment state of a service, as far as readiness and rollbacks go."""

    state: str | None  # the PRIMARY deployment's rolloutState
    failed: str | None  # task definition of a failed (rolled back) deployment, if any


def failure_reason(service: dict[str, Any]) -> str:
    """Why the primary deployment's tasks did not start, in ECS's words (newest event)."""
    for event in service.get("events") or []:  # ECS lists the newest first
        message = str(event.get("message") or "")
        if REASON_MARK in message:
            return message.partition(REASON_MARK)[2].rstrip(".")[:MAX_REASON]
    deployments = service.get("deployments") or []
    primary: dict[str, Any] = next(
        (d for d in deployments if d.get("status") == "PRIMARY"), {})
    return str(primary.get("rolloutStateReason") or "tasks failed to start")[:MAX_REASON]


def lean(service: Mapping[str, Any]) -> dict[str, Any]:
    """The service without the events `failure_reason` would not read: ECS keeps 100 a
    service, so the cluster's listing held 100,000 of them at 1,000 tenants."""
    reason = next((e for e in service.get("events") or []
                   if REASON_MARK in str(e.get("message") or "")), None)
    return {**service, "events": [reason] if reason is not None else []}


def rollout_of(service: dict[str, Any]) -> Rollout:
    """PRIMARY rollout state, and which deployment failed if the circuit breaker fired."""
    deployments = service.get("deployments") or []
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    state: str | None = None
    if primary is not None:
        state = primary.get("rolloutState")
        if state is None:  # no rollout tracking: done when its tasks run
            done = primary.get("runningCount") == primary.get("desiredCount")
            state = "COMPLETED" if done else "IN_PROGRESS"
    failed = next((d for d in deployments if d.get("rolloutState") == "FAILED"), None)
    if failed is not None:
        return Rollout(state, str(failed.get("taskDefinition")))
    tags = {t.get("key"): t.get("value") for t in service.get("tags") or []}
    requested = tags.get(TAG_REQUESTED)
    current = service.get("taskDefinition")
    # Back on another revision than the one we deployed: the circuit breaker's rollback.
    return Rollout(state, requested if requested and requested != current else None)


def healthy_targets(clients: Any, service: dict[str, Any], recorded: str | None) -> int:
    """Healthy targets in the target group the service registers its tasks in."""
    groups = [lb.get("targetGroupArn") for lb in service.get("loadBalancers") or []]
    arn = next((g for g in groups if g), None) or recorded
    if not arn:
        return 0
    try:
        found = clients.elbv2.describe_target_health(TargetGroupArn=arn)
    except ClientError as exc:
        if aws.error_code(exc) == TARGET_GROUP_GONE:
            return 0
        raise
    states = [d.get("TargetHealth", {}).get("State") for d in found["TargetHealthDescriptions"]]
    return states.count("healthy")


def tasks_seen(service: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the service shows of its tasks: counts, and each deployment's id, state and
    counts. Equal between two looks: ECS started, stopped or replaced no task."""
    deployments = sorted(
        (str(d.get("id")), str(d.get("status")), str(d.get("rolloutState")),
         d.get("runningCount"), d.get("pendingCount"), d.get("desiredCount"),
         str(d.get("updatedAt")))
        for d in service.get("deployments") or []
    )
    return (service.get("runningCount"), service.get("pendingCount"), tuple(deployments))


def steady(service: dict[str, Any]) -> bool:
    """ACTIVE, its rollout completed and every task it wants running: nothing moving, so
    a listing of it is as good as reading it now."""
    return (_active(service) and rollout_of(service).state == "COMPLETED"
            and service.get("runningCount") == service.get("desiredCount"))


def _active(service: dict[str, Any] | None) -> bool:
    return service is not None and service.get("status") == ACTIVE


def scaler_id(cluster: str, service_name: str) -> str:
    """Application Auto Scaling's name for a service: `service/<cluster>/<name>`."""
    return f"service/{cluster}/{service_name}"


def _cluster(service: dict[str, Any], settings: Settings) -> str:
    """The cluster name of a described service (its ARN's tail), else the shared one."""
    return str(service.get("clusterArn") or settings.cluster_name).rpartition("/")[2]


def _service_name(service: dict[str, Any]) -> str:
    return str(service.get("serviceName") or str(service["serviceArn"]).rpartition("/")[2])


class Service(
    Resource,
    group="Compute",
    ids=("serviceArn",),
    gone=GONE_CODES,
    needs=("TaskDefinition", "TargetGroup", "ListenerRule", "SecurityGroup"),
    retainable=True,
):
    """ECS service of one tenant (condition group "Compute")."""

    def _describe(self, clients: Any, cluster: str, refs: Sequence[str]) -> list[dict[str, Any]]:
        """Described services with tags, in any status (missing ones are left out)."""
        page = clients.ecs.describe_services(cluster=cluster, services=list(refs),
                                             include=["TAGS"])
        return [lean(s) for s in page.get("services", [])]

    def find_by_id(self, ctx: Context, recorded: str) -> dict[str, Any] | None:
        """The recorded service if it is ACTIVE (a DRAINING one: look by name too).

        From the cluster's listing while it is steady; read on its own while it moves.
        """
        cluster = ctx.settings.cluster_name

        def direct() -> dict[str, Any] | None:
            found = self._describe(ctx.clients, cluster, [recorded])
            return next((s for s in found if _active(s)), None)

        service: dict[str, Any] | None = self.cached(
            ctx, LISTED, cluster, recorded,
            bulk=lambda: self.cluster_services(ctx.clients, cluster),
            direct=direct, settled=steady,
        )
        return service

    def cluster_services(self, clients: Any, cluster: str) -> dict[str, dict[str, Any]]:
        """ARN -> service (with tags), for every service of the cluster: ListServices,
        then DescribeServices 10 at a time (its limit, "DescribeServices", ECS API)."""
        pages = clients.ecs.get_paginator("list_services").paginate(cluster=cluster)
        arns = [str(arn) for page in pages for arn in page.get("serviceArns", [])]
        services: dict[str, dict[str, Any]] = {}
        for start in range(0, len(arns), SERVICES_PER_CALL):
            batch = arns[start : start + SERVICES_PER_CALL]
            for service in self._describe(clients, cluster, batch):
                services[str(service["serviceArn"])] = service
        return services

    def find_by_name(self, ctx: Context) -> dict[str, Any] | None:
        """The service of the tenant's name: the ACTIVE one, else one still draining."""
        try:
            found = self._describe(ctx.clients, ctx.settings.cluster_name, [ctx.names.service])
        except ClientError as exc:
            if self.is_gone(exc):
                return None
            raise
        return next((s for s in found if _active(s)), found[0] if found else None)

    def inspect(self, ctx: Context, found: dict[str, Any]) -> Observation:
        """Exists when ACTIVE; up to date on task definition and desired count only.

        Deployment configuration and grace period are not compared: moto drops them on
        create, and they never change after it.
        """
        if not _active(found):  # not ACTIVE: gone for the engine (create waits while it drains)
            return Observation(exists=False, up_to_date=False, ready=False, found=found)
        current = found.get("taskDefinition")
        desired = int(found.get("desiredCount", 0))
        rollout = rollout_of(found)
        wanted = ctx.ids.get("taskDefinitionArn")
        # The wanted revision failed and ECS went back: settled until the spec changes.
        stuck = rollout.failed is not None and rollout.failed == wanted and current != wanted
        facts = Facts(
            running=int(found.get("runningCount", 0)),
            desired=desired,
            healthy=self._healthy(ctx, found, desired),
            rollout_state=rollout.state or "",
            serving=str(current or ""),
            rolled_back_from=str(wanted) if stuck else "",
        )
        as_planned = (current == wanted or stuck) and count_matches(ctx, desired)
        held = tag_dict(found.get("tags")).get(TAG_SECRET_VERSION)
        secret = secret_rollout(tag_dict(found.get("tags")), ctx.ids.get(SECRET_VERSION), desired)
        up_to_date = as_planned and not secret
        ready = (
            facts.running == desired
            and rollout.state == "COMPLETED"
            and (desired == 0 or facts.healthy >= desired)
        )
        detail = _detail(ctx, facts, stuck=stuck, up_to_date=as_planned, ready=ready)
        if secret == ROLL and as_planned and not stuck:
            detail = STALE_TASKS.format(have=held, current=ctx.ids.get(SECRET_VERSION))
        if rollout.state == "FAILED" and not stuck:
            detail = FAILED_BECAUSE.format(detail=detail, why=failure_reason(found))
        return Observation(
            exists=True,
            up_to_date=up_to_date,
            ids={"serviceArn": str(found["serviceArn"])},
            ready=ready,
            detail=detail,
            found=found,
            facts=facts,
        )

    def _healthy(self, ctx: Context, found: dict[str, Any], desired: int) -> int:
        """Healthy targets, read only when they may have changed.

        DescribeTargetHealth takes one target group a call, and ELBv2's account rate (10
        a second) is shared by every tenant's drift check and every provision: 1,000
        tenants each reading it every interval left provisions little. So: no task
        running, no healthy target (no read while tasks start); every task healthy, as
        last read, is kept while the service shows the same tasks and deployments (ECS
        replaces a task its target group finds unhealthy, which changes them), for at
        most HEALTH_KEPT_SECONDS; anything less than all healthy is read every time.
        """
        if int(found.get("runningCount", 0)) == 0:
            return 0
        owner, now, seen = ctx.owner(self.kind), time.monotonic(), tasks_seen(found)
        held: tuple[Any, int, float] | None = ctx.observations.kept(owner, HEALTH)
        if held is not None and held[0] == seen and now - held[2] < HEALTH_KEPT_SECONDS:
            return held[1]
        healthy = healthy_targets(ctx.clients, found, ctx.ids.get("targetGroupArn"))
        if steady(found) and healthy >= desired:
            ctx.observations.keep(owner, HEALTH, (seen, healthy, now))
        return healthy

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create the service unless an ACTIVE one exists (then adopt it).

        moto silently replaces a service created twice, so without a service in the
        observation create checks first (by name: one describe). In AWS the deterministic
        client token makes a retried request return the same service, and one racing with
        another token fails as not idempotent and is adopted.
        """
        service: dict[str, Any] | None = observed.found or self.find(ctx)
        if service is not None and service.get("status") == DRAINING:
            raise self._draining(ctx)
        if service is None or not _active(service):
            service = self._create(ctx)
        ctx.remember({"serviceArn": str(service["serviceArn"])})

    def _create(self, ctx: Context) -> dict[str, Any]:
        """CreateService; on InvalidParameterException the winner of a racing create.

        The same code answers a name whose old service is still DRAINING (deleted after
        observe looked): then the service waits, as when observe finds it draining.
        """
        desired = desired_service(ctx)  # may be waiting for the other resources
        try:
            service: dict[str, Any] = ctx.clients.ecs.create_service(**desired)["service"]
        except ClientError as exc:
            if aws.error_code(exc) != NOT_IDEMPOTENT:
                raise
            adopted = self.find_by_name(ctx)
            if adopted is not None and adopted.get("status") == DRAINING:
                raise self._draining(ctx) from exc
            if adopted is None or not _active(adopted):
                raise
            return adopted
        log.info("created service %s", ctx.names.service)
        return service

    @staticmethod
    def _draining(ctx: Context) -> TransientError:
        return TransientError(
            reasons.SERVICE_DRAINING, DRAINING_MESSAGE.format(name=ctx.names.service)
        )

    def update(self, ctx: Context, observed: Observation) -> None:
        """Deploy the recorded task definition and/or set the desired count, as differ."""
        (wanted,) = _require(ctx, "taskDefinitionArn")
        service: dict[str, Any] | None = observed.found
        if service is None or not _active(service):
            self.create(ctx, observed)
            return
        ctx.remember({"serviceArn": str(service["serviceArn"])})
        changes: dict[str, Any] = {}
        failed = rollout_of(service).failed
        blocked = service.get("taskDefinition") != wanted and failed == wanted
        if service.get("taskDefinition") != wanted and not blocked:
            changes["taskDefinition"] = wanted
        if not count_matches(ctx, int(service.get("desiredCount", 0))):
            changes["desiredCount"] = desired_count(ctx)
        version = ctx.ids.get(SECRET_VERSION)
        secret = secret_rollout(tag_dict(service.get("tags")), version,
                                int(changes.get("desiredCount", service.get("desiredCount", 0))))
        if secret == ROLL and "taskDefinition" not in changes:
            changes["forceNewDeployment"] = True  # same revision, tasks with the new password
        ecs = ctx.clients.ecs
        if changes:
            ecs.update_service(
                cluster=ctx.settings.cluster_name, service=ctx.names.service, **changes
            )
            log.info("updated service %s: %s", ctx.names.service, sorted(changes))
        tags = [{"key": TAG_REQUESTED, "value": wanted}] if "taskDefinition" in changes else []
        if version and (secret or "taskDefinition" in changes):  # new tasks read it now
            tags.append({"key": TAG_SECRET_VERSION, "value": str(version)})
        if tags:
            ecs.tag_resource(resourceArn=service["serviceArn"], tags=tags)

    def remove(self, clients: Any, settings: Settings, found: dict[str, Any]) -> None:
        """Drop its scalable target, scale to zero, delete (forced).

        A service that is not ACTIVE is already being deleted by ECS: only its scaler is
        left to drop.
        """
        cluster, name = _cluster(found, settings), _service_name(found)
        self._drop_scaler(clients, scaler_id(cluster, name))
        if not _active(found):
            return
        arn = str(found["serviceArn"])
        if int(found.get("desiredCount", 0)) > 0:
            clients.ecs.update_service(cluster=cluster, service=arn, desiredCount=0)
        clients.ecs.delete_service(cluster=cluster, service=arn, force=True)
        log.info("deleted service %s", name)

    @staticmethod
    def _drop_scaler(clients: Any, resource_id: str) -> None:
        """Deregister the service's scalable targets (AWS removes their policies too)."""
        scaling = clients.application_autoscaling
        targets = scaling.describe_scalable_targets(
            ServiceNamespace=SCALING_NAMESPACE, ResourceIds=[resource_id]
        )["ScalableTargets"]
        for target in targets:
            if target.get("ResourceId") != resource_id:
                continue
            try:
                scaling.deregister_scalable_target(
                    ServiceNamespace=SCALING_NAMESPACE, ResourceId=resource_id,
                    ScalableDimension=target["ScalableDimension"],
                )
            except ClientError as exc:
                if aws.error_code(exc) != SCALER_GONE:
                    raise

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """TagResource on the recorded service."""
        ctx.clients.ecs.tag_resource(
            resourceArn=recorded, tags=[{"key": k, "value": v} for k, v in tags.items()]
        )

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """Every ACTIVE service of the cluster with our managed-by tag (10 per describe)."""
        paginator = clients.ecs.get_paginator("list_services")
        arns = [
            str(arn)
            for page in paginator.paginate(cluster=settings.cluster_name)
            for arn in page.get("serviceArns", [])
        ]
        for start in range(0, len(arns), SERVICES_PER_CALL):
            batch = arns[start : start + SERVICES_PER_CALL]
            for service in self._describe(clients, settings.cluster_name, batch):
                found = self._found(service, settings)
                if found is not None and found.tags.get(TAG_MANAGED_BY) == settings.operator_name:
                    yield found

    @staticmethod
    def _found(service: dict[str, Any], settings: Settings) -> Found | None:
        if not _active(service):
            return None  # draining: ECS is deleting it already
        details = {"cluster": _cluster(service, settings), "serviceName": _service_name(service)}
        return Found(str(service["serviceArn"]), service, tag_dict(service.get("tags")), details)

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The service if still ACTIVE, with its current tags."""
        cluster = str(item.details.get("cluster") or settings.cluster_name)
        try:
            found = self._describe(clients, cluster, [item.id])
        except ClientError as exc:
            if self.is_gone(exc):
                return None
            raise
        return self._found(found[0], settings) if found else None


def _detail(ctx: Context, facts: Facts, *, stuck: bool, up_to_date: bool, ready: bool) -> str:
    """Why the service is not (yet) what the plan wants; empty when it is."""
    wanted = ctx.ids.get("taskDefinitionArn")
    if stuck:
        return ROLLED_BACK_MESSAGE.format(arn=wanted, current=facts.serving)
    if not up_to_date:
        return STALE.format(current=facts.serving, count=facts.desired, wanted=wanted,
                            want_count=desired_count(ctx))
    if not ready:
        return NOT_READY.format(running=facts.running, desired=facts.desired,
                                rollout=facts.rollout_state or None, healthy=facts.healthy)
    return ""
