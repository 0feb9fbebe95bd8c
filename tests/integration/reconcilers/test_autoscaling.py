"""The tenant's scaler against moto: register, stay quiet, follow the spec, go away.

What the scaler needs is an ECS service of the tenant's name in the shared cluster, so the
fixture makes just that (a task definition and a service, plain boto3). Writes are counted
from the platform server's request journal, not by wrapping boto3. The last test runs the
whole engine, to see the scaler after the service and gone while suspended.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import MakeCtx, roll_back_settled
from tests.platform.journal import Entry, read_journal, writes
from wpenv import engine
from wpenv.errors import TransientError
from wpenv.reconcilers import autoscaling as asc
from wpenv.reconcilers.autoscaling import Autoscaling
from wpenv.reconcilers.base import MISSING, Context

pytestmark = pytest.mark.e2e

SCALING = {"minReplicas": 2, "maxReplicas": 5, "targetCpuUtilization": 50}
SCALER = "application-autoscaling"


def _with(make_ctx: MakeCtx, ctx: Context, **spec: Any) -> Context:
    """The same tenant with another spec, carrying what was recorded so far."""
    other = make_ctx(tenant=ctx.names.tenant, **spec)
    other.ids.update(ctx.ids)
    return other


def _target(ctx: Context) -> dict[str, Any] | None:
    found = ctx.clients.application_autoscaling.describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[asc.resource_id(ctx)]
    )["ScalableTargets"]
    mine = [t for t in found if t["ResourceId"] == asc.resource_id(ctx)]
    return dict(mine[0]) if mine else None


def _policy(ctx: Context) -> dict[str, Any] | None:
    found = ctx.clients.application_autoscaling.describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=asc.resource_id(ctx)
    )["ScalingPolicies"]
    mine = [
        p for p in found
        if p["ResourceId"] == asc.resource_id(ctx) and p["PolicyName"] == asc.policy_name(ctx)
    ]
    return dict(mine[0]) if mine else None


def _scaler_writes(ctx: Context, since: float) -> list[Entry]:
    """Writes to Application Auto Scaling about this tenant since `since`."""
    entries = read_journal(os.environ["AWS_ENDPOINT_URL"], since)
    return [
        e for e in writes(entries)
        if e.service == SCALER and e.ids.get("ResourceId") == asc.resource_id(ctx)
    ]


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A tenant with an ECS service (no load balancer: the scaler does not care)."""
    context = make_ctx(autoscaling=SCALING)
    ecs, cluster = context.clients.ecs, context.settings.cluster_name
    with contextlib.ExitStack() as cleanup:
        task_definition = ecs.register_task_definition(
            family=context.names.task_family,
            containerDefinitions=[{"name": "wordpress", "image": "wordpress", "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]
        cleanup.callback(ecs.deregister_task_definition, taskDefinition=task_definition)
        service = ecs.create_service(
            cluster=cluster, serviceName=context.names.service,
            taskDefinition=task_definition, desiredCount=2,
        )["service"]["serviceArn"]
        cleanup.callback(ecs.delete_service, cluster=cluster, service=service, force=True)
        context.ids["serviceArn"] = service
        cleanup.callback(Autoscaling().ensure_absent, context)
        yield context


def test_create_makes_the_target_and_policy_and_an_idle_pass_writes_nothing(
    ctx: Context,
) -> None:
    resource = Autoscaling()
    resource.create(ctx, MISSING)
    target = _target(ctx)
    assert target is not None
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 5)
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"
    assert ctx.ids["scalableTarget"] == target["ScalableTargetARN"]
    policy = _policy(ctx)
    assert policy is not None and policy["PolicyType"] == "TargetTrackingScaling"
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 50.0
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "ECSServiceAverageCPUUtilization"
    )

    since = time.time()
    outcome = engine.converge(ctx, [resource])  # an idle pass
    assert outcome.ready and not outcome.events
    resource.create(ctx, resource.observe(ctx))  # a retried create adopts what is there
    resource.update(ctx, resource.observe(ctx))  # nothing differs: nothing to write
    assert _scaler_writes(ctx, since) == []


def test_bounds_and_target_follow_the_spec_and_drift_is_repaired(
    ctx: Context, make_ctx: MakeCtx
) -> None:
    resource = Autoscaling()
    resource.create(ctx, resource.observe(ctx))
    arn = ctx.ids["scalableTarget"]

    wider = _with(make_ctx, ctx, replicas=3, autoscaling={
        "minReplicas": 3, "maxReplicas": 8, "targetCpuUtilization": 50})
    observed = resource.observe(wider)
    assert observed.exists and not observed.up_to_date
    assert "min" in observed.detail
    since = time.time()
    resource.update(wider, observed)
    assert [e.action for e in _scaler_writes(ctx, since)] == ["RegisterScalableTarget"]
    target = _target(ctx)
    assert target is not None and (target["MinCapacity"], target["MaxCapacity"]) == (3, 8)
    assert resource.observe(wider).up_to_date and wider.ids["scalableTarget"] == arn

    hotter = _with(make_ctx, wider, replicas=3, autoscaling={
        "minReplicas": 3, "maxReplicas": 8, "targetCpuUtilization": 75})
    assert not resource.observe(hotter).up_to_date
    since = time.time()
    resource.update(hotter, resource.observe(hotter))
    assert [e.action for e in _scaler_writes(ctx, since)] == ["PutScalingPolicy"]
    policy = _policy(ctx)
    assert policy is not None
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 75.0
    assert resource.observe(hotter).up_to_date

    # Someone edits the scaler by hand and deletes the policy: the next pass puts both back.
    client = ctx.clients.application_autoscaling
    client.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=asc.resource_id(ctx),
        ScalableDimension="ecs:service:DesiredCount", MinCapacity=1, MaxCapacity=10,
    )
    client.delete_scaling_policy(
        ServiceNamespace="ecs", ResourceId=asc.resource_id(ctx),
        ScalableDimension="ecs:service:DesiredCount", PolicyName=asc.policy_name(ctx),
    )
    drifted = resource.observe(hotter)
    assert drifted.exists and not drifted.up_to_date and "no policy" in drifted.detail
    outcome = engine.converge(hotter, [resource])
    assert [e.reason for e in outcome.events] == ["Updated"]
    target, policy = _target(ctx), _policy(ctx)
    assert target is not None and (target["MinCapacity"], target["MaxCapacity"]) == (3, 8)
    assert policy is not None
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 75.0


def test_removed_when_the_spec_drops_autoscaling(ctx: Context, make_ctx: MakeCtx) -> None:
    resource = Autoscaling()
    resource.create(ctx, resource.observe(ctx))
    recorded: dict[str, Any] = {}

    fixed = _with(make_ctx, ctx)  # no autoscaling any more
    fixed.record = recorded.update
    assert not resource.wanted(fixed)
    outcome = engine.converge(fixed, [resource])
    assert [e.reason for e in outcome.events] == ["Removed"]
    assert outcome.ready
    assert _target(ctx) is None and _policy(ctx) is None
    assert "scalableTarget" not in fixed.ids and recorded == {"scalableTarget": None}

    since = time.time()
    again = engine.converge(fixed, [resource])  # gone stays gone, quietly
    assert again.ready and not again.events
    assert _scaler_writes(ctx, since) == []


def test_removed_while_suspended_and_back_on_resume(ctx: Context, make_ctx: MakeCtx) -> None:
    resource = Autoscaling()
    resource.create(ctx, resource.observe(ctx))

    suspended = _with(make_ctx, ctx, suspended=True, autoscaling=SCALING)
    assert not resource.wanted(suspended)
    engine.converge(suspended, [resource])
    assert _target(ctx) is None and _policy(ctx) is None

    resumed = _with(make_ctx, suspended, autoscaling=SCALING)
    outcome = engine.converge(resumed, [resource])
    assert [e.reason for e in outcome.events] == ["Created"]
    target = _target(ctx)
    assert target is not None and (target["MinCapacity"], target["MaxCapacity"]) == (2, 5)
    assert _policy(ctx) is not None and resumed.ids["scalableTarget"]


def test_create_waits_for_the_service(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(autoscaling=SCALING)
    with pytest.raises(TransientError) as waiting:
        Autoscaling().create(ctx, Autoscaling().observe(ctx))
    assert waiting.value.reason == "WaitingForDependencies"


def _converge_until_ready(ctx: Context, timeout: float = 60.0) -> engine.Outcome:
    deadline = time.monotonic() + timeout
    resources = engine.default_resources()
    while True:
        outcome = engine.converge(ctx, resources, may_roll_back=False)
        if outcome.ready or time.monotonic() > deadline:
            return outcome
        assert outcome.failure is None, outcome.failure
        time.sleep(min(outcome.retry_after or 1.0, 1.0))


def test_the_engine_scales_after_the_service_and_not_while_suspended(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(autoscaling=SCALING)
    try:
        assert _converge_until_ready(ctx).ready
        target = _target(ctx)
        assert target is not None and (target["MinCapacity"], target["MaxCapacity"]) == (2, 5)
        assert ctx.ids["scalableTarget"] == target["ScalableTargetARN"]

        suspended = _with(make_ctx, ctx, suspended=True, autoscaling=SCALING)
        outcome = _converge_until_ready(suspended)
        assert outcome.ready and _target(ctx) is None
        assert outcome.facts is not None
        assert outcome.facts.desired == 0 and outcome.facts.running == 0
        assert "scalableTarget" not in suspended.ids

        resumed = _with(make_ctx, suspended, autoscaling=SCALING)
        outcome = _converge_until_ready(resumed)
        assert outcome.ready and outcome.facts is not None and outcome.facts.desired == 2
        assert _target(ctx) is not None and _policy(ctx) is not None
        ctx.ids.update(resumed.ids)
    finally:
        assert roll_back_settled(ctx, engine.default_resources())
    assert _target(ctx) is None and _policy(ctx) is None
