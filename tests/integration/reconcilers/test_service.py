"""The tenant's ECS service against moto and the simulator: rollouts, scaling, rollback.

The prerequisites (security group, target group behind a listener rule, the two secrets
the container takes) are made here with plain boto3; the task definition, and what its
tasks need to start (the log group, and an execution role that may read the secrets),
with their own modules.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import MakeCtx, role_propagated, until_released
from wpenv import aws
from wpenv.reconcilers.base import MISSING, Context, Facts, Observation
from wpenv.reconcilers.execution_role import ExecutionRole
from wpenv.reconcilers.log_group import LogGroup
from wpenv.reconcilers.pool import pool_listeners
from wpenv.reconcilers.service import Service, rollout_of
from wpenv.reconcilers.task_definition import TaskDefinition

pytestmark = pytest.mark.e2e

FAKE_IDS = {
    "taskRoleArn": "arn:aws:iam::123456789012:role/wpenv-it-task",
    "accessPointId": "fsap-0123456789abcdef0",
    # Identity is on by default: the task definition also names the Cognito pieces.
    "userPoolId": "us-east-1_AbCdEf123",
    "userPoolClientId": "1example23456789",
    "userPoolDomain": "wpenv-it-0123abcd",
}
WAIT_SECONDS = 15.0


def wait_for(
    ctx: Context, check: Callable[[Observation], bool], timeout: float = WAIT_SECONDS
) -> Observation:
    """Observe until `check` holds; fail with the last observation after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        observed = Service().observe(ctx)
        if check(observed):
            return observed
        if time.monotonic() > deadline:
            pytest.fail(f"not reached in {timeout}s: {observed}")
        time.sleep(0.25)


def _with(make_ctx: MakeCtx, ctx: Context, **spec: Any) -> Context:
    """The same tenant with another spec, carrying what was recorded so far."""
    other = make_ctx(tenant=ctx.names.tenant, **spec)
    other.ids.update(ctx.ids)
    return other


def _described(ctx: Context) -> dict[str, Any]:
    found = ctx.clients.ecs.describe_services(
        cluster=ctx.settings.cluster_name, services=[ctx.names.service]
    )["services"]
    return dict(found[0])


def _active_services(ctx: Context) -> int:
    arns = ctx.clients.ecs.list_services(cluster=ctx.settings.cluster_name)["serviceArns"]
    mine = [a for a in arns if a.endswith(f"/{ctx.names.service}")]
    if not mine:
        return 0
    found = ctx.clients.ecs.describe_services(cluster=ctx.settings.cluster_name, services=mine)
    return sum(1 for s in found["services"] if s["status"] == "ACTIVE")


def _listener_rule(ctx: Context, target_group: str) -> str:
    """A rule forwarding the tenant's path to its target group, at a free high priority."""
    elbv2 = ctx.clients.elbv2
    listener = pool_listeners(ctx.clients, ctx.settings)[-1]
    prefix = f"/{ctx.names.tenant}"
    for _ in range(20):
        try:
            return str(elbv2.create_rule(
                ListenerArn=listener,
                Priority=random.randint(40000, 49999),
                Conditions=[{"Field": "path-pattern", "Values": [f"{prefix}*"]}],
                Actions=[{"Type": "forward", "TargetGroupArn": target_group}],
            )["Rules"][0]["RuleArn"])
        except ClientError as exc:
            if aws.error_code(exc) != "PriorityInUse":
                raise
    pytest.fail("no free listener priority")


def _startable(ctx: Context, cleanup: contextlib.ExitStack) -> None:
    """What the simulator (as ECS) checks before a task runs: the container's secrets
    exist, its log group exists, and its execution role may read the secrets."""
    secrets = ctx.clients.secretsmanager
    for key, name in (("dbSecretArn", ctx.names.db_secret),
                      ("siteSecretArn", ctx.names.site_secret),
                      ("clientSecretArn", ctx.names.client_secret)):
        ctx.ids[key] = secrets.create_secret(Name=name, SecretString="{}")["ARN"]
        cleanup.callback(secrets.delete_secret, SecretId=ctx.ids[key],
                         ForceDeleteWithoutRecovery=True)
    for kind in (LogGroup(), ExecutionRole()):
        cleanup.callback(kind.ensure_absent, ctx)
        kind.create(ctx, MISSING)
    role_propagated(ctx)  # ECS may not use a role it has just been given yet


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A tenant with a security group, a target group behind a rule and a task definition.

    Each piece is removed afterwards (newest first), even when a later one failed.
    """
    context = make_ctx()
    ec2, elbv2 = context.clients.ec2, context.clients.elbv2
    settings = context.settings
    with contextlib.ExitStack() as cleanup:
        group = ec2.create_security_group(
            GroupName=f"{context.names.security_group}-{uuid.uuid4().hex[:6]}",
            Description="service integration test", VpcId=settings.vpc_id,
        )["GroupId"]
        cleanup.callback(until_released, ec2.delete_security_group, GroupId=group)
        target_group = elbv2.create_target_group(
            Name=context.names.target_group, Protocol="HTTP", Port=settings.container_port,
            VpcId=settings.vpc_id, TargetType="ip", HealthCheckPath="/wp-login.php",
        )["TargetGroups"][0]["TargetGroupArn"]
        cleanup.callback(elbv2.delete_target_group, TargetGroupArn=target_group)
        rule = _listener_rule(context, target_group)
        cleanup.callback(elbv2.delete_rule, RuleArn=rule)
        context.ids.update(FAKE_IDS, securityGroupId=group, targetGroupArn=target_group)
        _startable(context, cleanup)
        cleanup.callback(TaskDefinition().ensure_absent, context)
        TaskDefinition().create(context, TaskDefinition().observe(context))
        cleanup.callback(Service().ensure_absent, context)
        yield context


def _facts(observed: Observation) -> Facts:
    assert observed.facts is not None, observed
    return observed.facts


def _failed(observed: Observation) -> str | None:
    """The revision of a failed (rolled back) deployment, read from the described service."""
    return rollout_of(observed.found).failed if observed.found is not None else None


def _ready(replicas: int) -> Callable[[Observation], bool]:
    def check(observed: Observation) -> bool:
        return (
            observed.ready
            and observed.up_to_date
            and _facts(observed).running == replicas
            and _facts(observed).healthy == replicas
        )
    return check


def test_create_makes_the_service_the_plan_describes_and_it_rolls_out(
    ctx: Context, make_ctx: MakeCtx
) -> None:
    resource = Service()
    resource.create(ctx, MISSING)
    arn = ctx.ids["serviceArn"]
    observed = resource.observe(ctx)
    assert observed.exists and observed.up_to_date and not observed.ready
    assert _facts(observed).desired == 2 and _facts(observed).running == 0

    ready = wait_for(ctx, _ready(2))
    assert _facts(ready).rollout_state == "COMPLETED" and _failed(ready) is None
    assert _facts(ready).serving == ctx.ids["taskDefinitionArn"]
    assert _facts(ready).rolled_back_from == ""
    service = _described(ctx)
    assert service["launchType"] == "FARGATE" and service["platformVersion"] == "1.4.0"
    vpc = service["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc["securityGroups"] == [ctx.ids["securityGroupId"]]
    assert vpc["assignPublicIp"] == "DISABLED"
    assert service["loadBalancers"][0]["targetGroupArn"] == ctx.ids["targetGroupArn"]
    tags = ctx.clients.ecs.list_tags_for_resource(resourceArn=arn)["tags"]
    assert ctx.tags.items() <= {t["key"]: t["value"] for t in tags}.items()
    lost = resource.observe(make_ctx(tenant=ctx.names.tenant))  # a restarted operator
    assert lost.exists and lost.ready


def test_scaling_and_a_new_image(ctx: Context, make_ctx: MakeCtx) -> None:
    resource = Service()
    resource.create(ctx, resource.observe(ctx))
    wait_for(ctx, _ready(2))

    scaled = _with(make_ctx, ctx, replicas=3)
    observed = resource.observe(scaled)
    assert observed.exists and not observed.up_to_date
    resource.update(scaled, observed)
    assert resource.observe(scaled).up_to_date
    wait_for(scaled, _ready(3))

    first = ctx.ids["taskDefinitionArn"]
    newer = _with(make_ctx, scaled, replicas=3, image="wordpress:6.9-apache")
    TaskDefinition().update(newer, TaskDefinition().observe(newer))
    second = newer.ids["taskDefinitionArn"]
    assert second != first
    assert not resource.observe(newer).up_to_date
    resource.update(newer, resource.observe(newer))
    rolling = resource.observe(newer)
    assert rolling.up_to_date and not rolling.ready
    assert _facts(rolling).rollout_state == "IN_PROGRESS"
    done = wait_for(newer, _ready(3))
    assert _facts(done).rollout_state == "COMPLETED" and _failed(done) is None
    assert _described(ctx)["taskDefinition"] == second
    ctx.ids.update(newer.ids)


def test_a_broken_image_is_rolled_back(ctx: Context, make_ctx: MakeCtx) -> None:
    resource = Service()
    resource.create(ctx, resource.observe(ctx))
    wait_for(ctx, _ready(2))
    good = ctx.ids["taskDefinitionArn"]

    broken = _with(make_ctx, ctx, image="wordpress:broken")
    TaskDefinition().update(broken, TaskDefinition().observe(broken))
    bad = broken.ids["taskDefinitionArn"]
    resource.update(broken, resource.observe(broken))

    rolled = wait_for(broken, lambda o: _failed(o) is not None)
    assert _failed(rolled) == bad
    settled = wait_for(broken, lambda o: o.ready)  # serving again, on the old revision
    assert _failed(settled) == bad
    assert _facts(settled).rolled_back_from == bad and _facts(settled).serving == good
    # Settled: deploying the revision that just failed again cannot help; a new spec must.
    assert settled.up_to_date
    resource.update(broken, settled)
    assert _described(ctx)["taskDefinition"] == good

    fixed = _with(make_ctx, broken, image="wordpress:6.9-apache")
    TaskDefinition().update(fixed, TaskDefinition().observe(fixed))
    resource.update(fixed, resource.observe(fixed))
    done = wait_for(fixed, _ready(2))
    assert _failed(done) is None and _facts(done).rolled_back_from == ""
    assert _described(ctx)["taskDefinition"] == fixed.ids["taskDefinitionArn"]
    ctx.ids.update(fixed.ids)


def test_suspend_and_resume(ctx: Context, make_ctx: MakeCtx) -> None:
    resource = Service()
    resource.create(ctx, resource.observe(ctx))
    wait_for(ctx, _ready(2))

    suspended = _with(make_ctx, ctx, suspended=True)
    observed = resource.observe(suspended)
    assert not observed.up_to_date
    resource.update(suspended, observed)
    quiet = wait_for(suspended, _ready(0))
    assert _facts(quiet).desired == 0

    resumed = _with(make_ctx, ctx, suspended=False)
    resource.update(resumed, resource.observe(resumed))
    wait_for(resumed, _ready(2))


def test_managed_lists_it_and_remove_drops_its_scaler_too(ctx: Context) -> None:
    resource = Service()
    resource.create(ctx, resource.observe(ctx))
    arn = ctx.ids["serviceArn"]
    scaling = ctx.clients.application_autoscaling
    scaler = f"service/{ctx.settings.cluster_name}/{ctx.names.service}"
    scaling.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=scaler, ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=1, MaxCapacity=3,
    )
    (item,) = [f for f in resource.managed(ctx.clients, ctx.settings) if f.id == arn]
    assert ctx.tags.items() <= item.tags.items()
    assert item.details["serviceName"] == ctx.names.service
    resource.remove_tolerant(ctx.clients, ctx.settings, item.found)  # the scan's shape
    assert _active_services(ctx) == 0
    targets = scaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[scaler])
    assert [t for t in targets["ScalableTargets"] if t["ResourceId"] == scaler] == []
