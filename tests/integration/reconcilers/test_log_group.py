"""The tenant's CloudWatch Logs log group against the platform: retention, tags, drift."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import MakeCtx, aws_calls, writes
from wpenv.plan import TAG_RETAINED, TAG_TENANT
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.log_group import LogGroup

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant; its log group is removed afterwards."""
    context = make_ctx()
    yield context
    LogGroup().ensure_absent(context)


def _described(ctx: Context) -> dict[str, object]:
    groups = ctx.clients.logs.describe_log_groups(logGroupNamePrefix=ctx.names.log_group)
    [group] = [g for g in groups["logGroups"] if g["logGroupName"] == ctx.names.log_group]
    return dict(group)


def _tags(ctx: Context) -> dict[str, str]:
    arn = str(ctx.ids["logGroupArn"])
    return dict(ctx.clients.logs.list_tags_for_resource(resourceArn=arn)["tags"])


def test_created_with_retention_and_tags_and_an_idle_observe_writes_nothing(
    ctx: Context,
) -> None:
    resource = LogGroup()
    resource.create(ctx, MISSING)
    group = _described(ctx)
    assert group["logGroupName"] == f"/wpenv/{ctx.names.tenant}"
    assert group["retentionInDays"] == ctx.settings.log_retention_days == 30
    assert ctx.ids["logGroupArn"] == group["logGroupArn"]
    assert _tags(ctx) == ctx.tags
    with aws_calls(ctx.clients) as calls:
        observed = resource.observe(ctx)
    assert observed.exists and observed.up_to_date, observed.detail
    assert writes(calls) == [] and len(calls) == 2  # DescribeLogGroups, ListTagsForResource


def test_a_prefix_neighbour_is_not_taken_for_it(ctx: Context, make_ctx: MakeCtx) -> None:
    neighbour = make_ctx(tenant=f"{ctx.names.tenant}x")
    try:
        LogGroup().create(neighbour, MISSING)
        assert not LogGroup().observe(ctx).exists
    finally:
        LogGroup().ensure_absent(neighbour)


def test_retention_and_tags_changed_by_hand_are_drift_and_repaired(ctx: Context) -> None:
    resource = LogGroup()
    resource.create(ctx, MISSING)
    logs = ctx.clients.logs
    logs.put_retention_policy(logGroupName=ctx.names.log_group, retentionInDays=7)
    logs.untag_resource(resourceArn=ctx.ids["logGroupArn"], tagKeys=[TAG_TENANT])
    observed = resource.observe(ctx)
    assert observed.exists and not observed.up_to_date
    assert "retention" in observed.detail and "tags" in observed.detail
    resource.update(ctx, observed)
    assert resource.observe(ctx).up_to_date
    assert _described(ctx)["retentionInDays"] == 30 and _tags(ctx) == ctx.tags

    logs.delete_retention_policy(logGroupName=ctx.names.log_group)  # never expire
    observed = resource.observe(ctx)
    assert not observed.up_to_date and "retention" in observed.detail
    resource.update(ctx, observed)
    assert _described(ctx)["retentionInDays"] == 30


def test_retain_tags_it_and_the_orphan_listing_finds_it(ctx: Context) -> None:
    resource = LogGroup()
    resource.create(ctx, MISSING)
    resource.tag(ctx, str(ctx.ids["logGroupArn"]), {TAG_RETAINED: "true"})
    assert _tags(ctx)[TAG_RETAINED] == "true"
    [item] = [f for f in resource.managed(ctx.clients, ctx.settings)
              if f.id == ctx.names.log_group]
    assert item.tags[TAG_RETAINED] == "true" and item.details["arn"] == ctx.ids["logGroupArn"]
    resource.remove_tolerant(ctx.clients, ctx.settings, item.found)
    resource.remove_tolerant(ctx.clients, ctx.settings, item.found)  # already gone
    assert resource.refresh(ctx.clients, ctx.settings, item) is None
    assert not resource.observe(ctx).exists
