"""The tenant's target group against moto: what create makes, drift repair, in use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import MakeCtx
from wpenv import aws
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.pool import pool_listeners
from wpenv.reconcilers.target_group import TargetGroup, desired_target_group

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant whose target group is removed whatever the test did."""
    context = make_ctx()
    yield context
    TargetGroup().ensure_absent(context)


def test_create_makes_the_group_the_plan_describes(ctx: Context) -> None:
    resource = TargetGroup()
    resource.create(ctx, MISSING)
    arn = ctx.ids["targetGroupArn"]
    described = ctx.clients.elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    wanted = desired_target_group(ctx)
    for key in ("Protocol", "Port", "VpcId", "TargetType", "HealthCheckPath",
                "HealthCheckIntervalSeconds", "HealthyThresholdCount", "Matcher"):
        assert described[key] == wanted[key], key
    tags = ctx.clients.elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == ctx.tags
    (item,) = [f for f in resource.managed(ctx.clients, ctx.settings) if f.id == arn]
    assert item.tags == ctx.tags and item.details["name"] == ctx.names.target_group


def test_changed_health_check_is_stale_and_update_repairs_it(ctx: Context) -> None:
    resource = TargetGroup()
    resource.create(ctx, resource.observe(ctx))
    arn = ctx.ids["targetGroupArn"]
    ctx.clients.elbv2.modify_target_group(
        TargetGroupArn=arn, HealthCheckPath="/", HealthyThresholdCount=5
    )
    observed = resource.observe(ctx)
    assert observed.exists and not observed.up_to_date
    assert "HealthCheckPath" in observed.detail

    resource.update(ctx, observed)
    assert resource.observe(ctx).up_to_date
    described = ctx.clients.elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    assert described["HealthCheckPath"] == f"/{ctx.spec.tenant_id}/wp-login.php"
    assert described["HealthyThresholdCount"] == 2


def test_recorded_arn_of_a_deleted_group_falls_back_to_the_name(ctx: Context) -> None:
    resource = TargetGroup()
    resource.create(ctx, resource.observe(ctx))
    arn = ctx.ids["targetGroupArn"]
    ctx.clients.elbv2.delete_target_group(TargetGroupArn=arn)
    resource.create(ctx, resource.observe(ctx))  # re-created under the same name, new ARN recorded
    assert ctx.ids["targetGroupArn"] != arn
    assert resource.observe(ctx).ids == {"targetGroupArn": ctx.ids["targetGroupArn"]}


def test_delete_while_a_rule_forwards_to_it_propagates_resource_in_use(ctx: Context) -> None:
    resource = TargetGroup()
    resource.create(ctx, resource.observe(ctx))
    elbv2 = ctx.clients.elbv2
    listener = pool_listeners(ctx.clients, ctx.settings)[0]
    used = {
        int(rule["Priority"])
        for rule in elbv2.describe_rules(ListenerArn=listener)["Rules"]
        if not rule["IsDefault"]
    }
    rule_arn = elbv2.create_rule(
        ListenerArn=listener,
        Priority=max(used, default=0) + 1000,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/in-use"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": ctx.ids["targetGroupArn"]}],
    )["Rules"][0]["RuleArn"]
    try:
        with pytest.raises(ClientError) as raised:
            resource.ensure_absent(ctx)
        assert aws.error_code(raised.value) == "ResourceInUse"
        assert aws.is_transient(raised.value)
        assert resource.observe(ctx).exists
    finally:
        elbv2.delete_rule(RuleArn=rule_arn)
