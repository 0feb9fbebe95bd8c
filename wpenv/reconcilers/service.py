"""The tenant's ECS service: runs the task definition on Fargate behind its target group.

The service is what makes an environment serve, so it is ready only when ECS says so
three ways: the running count reached the desired count, the PRIMARY deployment's rollout
COMPLETED, and the ALB sees as many healthy targets. Deployments use the circuit breaker
with rollback (HLD 4): a revision whose tasks never start is rolled back by ECS itself;
observe reports that (`rolledBack`, and `rolledBackFrom` when the revision that failed
is the one the spec wants) and counts the service as settled: it serves the previous
revision, and deploying the very revision that failed again cannot help; only a new spec
can. The status says so in its Rollout condition instead of retrying forever. To tell a
rollback from a service that simply has not been updated yet, every deployment we ask
for is written to a service tag.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.api.models import GROUP
from wpenv.reconcilers.base import (
    MISSING,
    Context,
    Observation,
    TransientError,
)

log = logging.getLogger(__name__)

WAITING = "WaitingForDependencies"
WAITING_FOR = "the service needs {missing} recorded first"
DRAINING = "ServiceDraining"
DRAINING_MESSAGE = "service {name} is still draining after a delete; it can be re-created later"
ROLLED_BACK = "DeploymentRolledBack"
ROLLED_BACK_MESSAGE = (
    "the deployment of {arn} failed and ECS rolled the service back to {current}; "
    "change the spec (e.g. the image) to try again"
)
NOT_READY = "running {running}/{desired}, rollout {rollout}, healthy targets {healthy}"
STALE = "service runs {current} with {count} tasks; the plan wants {wanted} with {want_count}"

# The deployment we last asked for; a service on another one was rolled back.
TAG_REQUESTED = f"wpenv.{GROUP}/task-definition"
PLATFORM_VERSION = "1.4.0"  # EFS volumes need Fargate platform 1.4.0 or later (HLD 8)
GRACE_SECONDS = 120
GONE_CODES = ("ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException")


def _require(ctx: Context, *keys: str) -> list[str]:
    missing = [key for key in keys if not ctx.ids.get(key)]
    if missing:
        raise TransientError(WAITING, WAITING_FOR.format(missing=", ".join(missing)))
    return [str(ctx.ids[key]) for key in keys]


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
        ],
        "clientToken": client_token(ctx, task_definition, count),
    }


@dataclass(frozen=True)
class Rollout:
    """The deployment state of a service, as far as readiness and rollbacks go."""

    state: str | None  # the PRIMARY deployment's rolloutState
    failed: str | None  # task definition of a failed (rolled back) deployment, if any


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


def find_service(ctx: Context) -> dict[str, Any] | None:
    """The tenant's service in any status (recorded ARN first, then its name), or None."""
    ecs = ctx.clients.ecs
    refs = [ctx.ids.get("serviceArn"), ctx.names.service]
    found: dict[str, Any] | None = None
    for ref in dict.fromkeys(r for r in refs if r):
        try:
            page = ecs.describe_services(
                cluster=ctx.settings.cluster_name, services=[ref], include=["TAGS"]
            )
        except ClientError as exc:
            if aws.is_not_found(exc, *GONE_CODES):
                return None
            raise
        for service in page.get("services", []):
            if service.get("status") == "ACTIVE":
                return dict(service)
            found = found or dict(service)
    return found


def healthy_targets(ctx: Context, service: dict[str, Any]) -> int:
    """Healthy targets in the target group the service registers its tasks in."""
    groups = [lb.get("targetGroupArn") for lb in service.get("loadBalancers") or []]
    arn = next((g for g in groups if g), None) or ctx.ids.get("targetGroupArn")
    if not arn:
        return 0
    try:
        found = ctx.clients.elbv2.describe_target_health(TargetGroupArn=arn)
    except ClientError as exc:
        if aws.is_not_found(exc):
            return 0
        raise
    states = [d.get("TargetHealth", {}).get("State") for d in found["TargetHealthDescriptions"]]
    return states.count("healthy")


class Service:
    """ECS service of one tenant (condition group "Compute")."""

    kind = "Service"
    group = "Compute"

    def observe(self, ctx: Context) -> Observation:
        """Exists when ACTIVE; up to date on task definition and desired count only.

        Deployment configuration and grace period are not compared: moto drops them on
        create, and they never change after it.
        """
        service = find_service(ctx)
        if service is None or service.get("status") != "ACTIVE":
            return MISSING
        current = service.get("taskDefinition")
        running = int(service.get("runningCount", 0))
        desired = int(service.get("desiredCount", 0))
        rollout = rollout_of(service)
        healthy = healthy_targets(ctx, service)
        wanted = ctx.ids.get("taskDefinitionArn")
        # The wanted revision failed and ECS went back: settled until the spec changes.
        stuck = rollout.failed is not None and rollout.failed == wanted and current != wanted
        up_to_date = (current == wanted or stuck) and count_matches(ctx, desired)
        ready = (
            running == desired
            and rollout.state == "COMPLETED"
            and (desired == 0 or healthy >= desired)
        )
        facts: dict[str, Any] = {
            "runningCount": running,
            "desiredCount": desired,
            "rolloutState": rollout.state,
            "healthyTargets": healthy,
            "rolledBack": rollout.failed is not None,
            "serving": current,
        }
        if rollout.failed is not None:
            facts["failedTaskDefinition"] = rollout.failed
        if stuck:
            facts["rolledBackFrom"] = wanted
        detail = ""
        if stuck:
            detail = ROLLED_BACK_MESSAGE.format(arn=wanted, current=current)
        elif not up_to_date:
            detail = STALE.format(current=current, count=desired, wanted=wanted,
                                  want_count=desired_count(ctx))
        elif not ready:
            detail = NOT_READY.format(running=running, desired=desired, rollout=rollout.state,
                                      healthy=healthy)
        return Observation(
            exists=True,
            up_to_date=up_to_date,
            ids={"serviceArn": str(service["serviceArn"])},
            ready=ready,
            detail=detail,
            facts=facts,
        )

    def create(self, ctx: Context) -> None:
        """Create the service unless an ACTIVE one exists (then adopt it)."""
        service = find_service(ctx)
        if service is not None and service.get("status") == "DRAINING":
            raise TransientError(DRAINING, DRAINING_MESSAGE.format(name=ctx.names.service))
        if service is None or service.get("status") != "ACTIVE":
            desired = desired_service(ctx)  # may be waiting for the other resources
            try:
                service = ctx.clients.ecs.create_service(**desired)["service"]
            except ClientError:
                # A concurrent create (another token) lost the race: adopt the winner.
                service = find_service(ctx)
                if service is None or service.get("status") != "ACTIVE":
                    raise
            log.info("created service %s", ctx.names.service)
        ctx.remember({"serviceArn": str(service["serviceArn"])})

    def update(self, ctx: Context, observed: Observation) -> None:
        """Deploy the recorded task definition and/or set the desired count, as differ."""
        (wanted,) = _require(ctx, "taskDefinitionArn")
        service = find_service(ctx)
        if service is None or service.get("status") != "ACTIVE":
            self.create(ctx)
            return
        ctx.remember({"serviceArn": str(service["serviceArn"])})
        changes: dict[str, Any] = {}
        failed = rollout_of(service).failed
        blocked = service.get("taskDefinition") != wanted and failed == wanted
        if service.get("taskDefinition") != wanted and not blocked:
            changes["taskDefinition"] = wanted
        if not count_matches(ctx, int(service.get("desiredCount", 0))):
            changes["desiredCount"] = desired_count(ctx)
        ecs = ctx.clients.ecs
        if changes:
            ecs.update_service(
                cluster=ctx.settings.cluster_name, service=ctx.names.service, **changes
            )
            log.info("updated service %s: %s", ctx.names.service, sorted(changes))
        if "taskDefinition" in changes:
            ecs.tag_resource(
                resourceArn=service["serviceArn"], tags=[{"key": TAG_REQUESTED, "value": wanted}]
            )

    def delete(self, ctx: Context) -> None:
        """Scale to zero, then delete (forced); a service that is not ACTIVE is already going."""
        service = find_service(ctx)
        if service is None or service.get("status") != "ACTIVE":
            return
        ecs = ctx.clients.ecs
        cluster = ctx.settings.cluster_name
        try:
            if int(service.get("desiredCount", 0)) > 0:
                ecs.update_service(cluster=cluster, service=service["serviceArn"], desiredCount=0)
            ecs.delete_service(cluster=cluster, service=service["serviceArn"], force=True)
        except ClientError as exc:
            if not aws.is_not_found(exc, *GONE_CODES):
                raise
        log.info("deleted service %s", ctx.names.service)
