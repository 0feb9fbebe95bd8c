"""The tenant's target group against moto: lifecycle, restart safety, drift repair."""

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


def _count(ctx: Context) -> int:
    paginator = ctx.clients.elbv2.get_paginator("describe_target_groups")
    return sum(
        1
        for page in paginator.paginate()
        for group in page["TargetGroups"]
        if group["TargetGroupName"] == ctx.names.target_group
    )


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant whose target group is removed whatever the test did."""
    context = make_ctx()
    yield context
    TargetGroup().ensure_absent(context)


def test_lifecycle(ctx: Context, make_ctx: MakeCtx) -> None:
    resource = TargetGroup()
    assert not resource.observe(ctx).exists

    resource.create(ctx, resource.observe(ctx))
    arn = ctx.ids["targetGroupArn"]
    observed = resource.observe(ctx)
    assert observed.exists and observed.up_to_date and observed.ready
    assert observed.ids == {"targetGroupArn": arn}

    described = ctx.clients.elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    wanted = desired_target_group(ctx)
    for key in ("Protocol", "Port", "VpcId", "TargetType", "HealthCheckPath",
                "HealthCheckIntervalSeconds", "HealthyThresholdCount", "Matcher"):
        assert described[key] == wanted[key], key
    tags = ctx.clients.elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == ctx.tags

    resource.create(ctx, resource.observe(ctx))  # moto refuses a second one: we adopt
    assert _count(ctx) == 1
    resource.create(ctx, MISSING)  # a stale observation: the duplicate error adopts
    assert _count(ctx) == 1 and ctx.ids["targetGroupArn"] == arn

    fresh = make_ctx(tenant=ctx.names.tenant)  # a restarted operator with a lost status
    assert fresh.ids == {}
    again = resource.observe(fresh)
    assert again.exists and again.up_to_date and again.ids == {"targetGroupArn": arn}
    resource.create(fresh, resource.observe(fresh))
    assert fresh.ids["targetGroupArn"] == arn and _count(ctx) == 1

    resource.ensure_absent(ctx)
    resource.ensure_absent(ctx)
    assert not resource.observe(ctx).exists
    assert not resource.observe(fresh).exists
    assert _count(ctx) == 0


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
    assert described["HealthCheckPath"] == "/wp-login.php"
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


def test_managed_lists_it_and_refresh_sees_it_gone(ctx: Context) -> None:
    resource = TargetGroup()
    resource.create(ctx, resource.observe(ctx))
    arn = ctx.ids["targetGroupArn"]
    (item,) = [f for f in resource.managed(ctx.clients, ctx.settings) if f.id == arn]
    assert item.tags == ctx.tags and item.details["name"] == ctx.names.target_group
    again = resource.refresh(ctx.clients, ctx.settings, item)
    assert again is not None and again.tags == ctx.tags

    resource.remove_tolerant(ctx.clients, ctx.settings, item.found)  # the scan's shape
    assert resource.refresh(ctx.clients, ctx.settings, item) is None
    assert not resource.observe(ctx).exists
