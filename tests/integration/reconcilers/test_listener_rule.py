"""The tenant's listener rule against the platform: what create makes, placement, drift repair."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import MakeCtx
from tests.platform.journal import clear_journal, read_journal
from wpenv import aws
from wpenv.errors import TransientError
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.listener_rule import ListenerRule, find_rule, read_pool
from wpenv.reconcilers.placement import Placement
from wpenv.reconcilers.pool import endpoint, forward_targets, pool_listeners
from wpenv.reconcilers.target_group import TargetGroup

pytestmark = pytest.mark.e2e

Tenant = Callable[..., Context]


@pytest.fixture
def tenant(make_ctx: MakeCtx) -> Iterator[Tenant]:
    """Contexts for new tenants, placed, each with its own target group; all removed after."""
    made: list[Context] = []

    def build(**spec: Any) -> Context:
        ctx = make_ctx(**spec)
        Placement().create(ctx, Placement().observe(ctx))
        TargetGroup().create(ctx, TargetGroup().observe(ctx))
        made.append(ctx)
        return ctx

    yield build
    for ctx in made:
        ListenerRule().ensure_absent(ctx)
    for ctx in made:
        TargetGroup().ensure_absent(ctx)


def _rules_forwarding_to(ctx: Context) -> list[dict[str, Any]]:
    return [
        found.rule
        for found in read_pool(ctx.clients, ctx.settings).all_rules()
        if ctx.ids["targetGroupArn"] in forward_targets(found.rule["Actions"])
    ]


def _values(rule: dict[str, Any], field: str) -> set[str]:
    values: set[str] = set()
    for condition in rule["Conditions"]:
        if condition["Field"] == field:
            values.update(condition.get("Values") or [])
            for key, config in condition.items():
                if key.endswith("Config"):
                    values.update(config.get("Values") or [])
    return values


def test_create_makes_the_rule_the_plan_describes(tenant: Tenant) -> None:
    ctx = tenant()
    resource = ListenerRule()
    resource.create(ctx, MISSING)
    rule_arn = ctx.ids["listenerRuleArn"]
    assert ctx.ids["listenerArn"] in pool_listeners(ctx.clients, ctx.settings)
    assert isinstance(ctx.ids["rulePriority"], int) and ctx.ids["rulePriority"] >= 1
    [rule] = _rules_forwarding_to(ctx)
    prefix = f"/{ctx.names.tenant}"
    assert _values(rule, "path-pattern") == {prefix, f"{prefix}/*"}
    assert _values(rule, "host-header") == set()
    tags = ctx.clients.elbv2.describe_tags(ResourceArns=[rule_arn])["TagDescriptions"][0]["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == ctx.tags
    assert endpoint(ctx.clients, ctx.ids["listenerArn"]).protocol == "HTTPS"
    (item,) = [f for f in resource.managed(ctx.clients, ctx.settings) if f.id == rule_arn]
    assert item.tags == ctx.tags and item.details["listenerArn"] == ctx.ids["listenerArn"]


def test_create_chooses_its_priority_from_the_rules_observe_just_read(
    tenant: Tenant, platform: dict[str, str]
) -> None:
    ctx = tenant()
    resource = ListenerRule()
    observed = resource.observe(ctx)
    assert not observed.exists
    clear_journal(platform["AWS_ENDPOINT_URL"])
    resource.create(ctx, observed)
    actions = [e.action for e in read_journal(platform["AWS_ENDPOINT_URL"])]
    assert actions == ["CreateRule"], "the listener is not read again"
    assert ctx.handed == {}
    again = make_rule_again(ctx)
    assert again == ctx.ids["listenerRuleArn"], "adopted, not made twice"


def make_rule_again(ctx: Context) -> str:
    """Create with a MISSING observation (nothing handed): the listener is read, ours found."""
    ListenerRule().create(ctx, MISSING)
    return str(ctx.ids["listenerRuleArn"])


def test_a_lost_status_finds_the_rule_by_its_tags_without_the_target_group(
    tenant: Tenant, make_ctx: MakeCtx
) -> None:
    ctx = tenant()
    ListenerRule().create(ctx, MISSING)
    by_tags = find_rule(make_ctx(tenant=ctx.names.tenant), None)
    assert by_tags is not None and by_tags.rule["RuleArn"] == ctx.ids["listenerRuleArn"]


def test_create_waits_for_the_target_group_and_the_placement(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    with pytest.raises(TransientError) as raised:
        ListenerRule().create(ctx, ListenerRule().observe(ctx))
    assert raised.value.reason == "WaitingForTargetGroup"
    ctx.ids["targetGroupArn"] = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1"
    with pytest.raises(TransientError) as raised:
        ListenerRule().create(ctx, ListenerRule().observe(ctx))
    assert raised.value.reason == "WaitingForDependencies"


def test_hand_modified_rule_is_stale_and_update_repairs_it(tenant: Tenant) -> None:
    ctx = tenant()
    resource = ListenerRule()
    resource.create(ctx, resource.observe(ctx))
    ctx.clients.elbv2.modify_rule(
        RuleArn=ctx.ids["listenerRuleArn"],
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/elsewhere"]}}],
    )
    observed = resource.observe(ctx)
    assert observed.exists and not observed.up_to_date
    assert "conditions" in observed.detail

    resource.update(ctx, observed)
    assert resource.observe(ctx).up_to_date
    [rule] = _rules_forwarding_to(ctx)
    assert _values(rule, "path-pattern") == {f"/{ctx.names.tenant}", f"/{ctx.names.tenant}/*"}


def test_host_condition_when_routing_host_is_set(tenant: Tenant) -> None:
    ctx = tenant(routing={"host": "acme.example.com", "pathPrefix": "/acme-site"})
    resource = ListenerRule()
    resource.create(ctx, resource.observe(ctx))
    [rule] = _rules_forwarding_to(ctx)
    assert _values(rule, "host-header") == {"acme.example.com"}
    assert _values(rule, "path-pattern") == {"/acme-site", "/acme-site/*"}
    assert resource.observe(ctx).up_to_date

    ctx.spec.routing.host = "other.example.com"  # the spec changed: the rule is stale
    observed = resource.observe(ctx)
    assert not observed.up_to_date
    resource.update(ctx, observed)
    [rule] = _rules_forwarding_to(ctx)
    assert _values(rule, "host-header") == {"other.example.com"}


def test_removing_a_rule_deleted_by_hand_is_success(tenant: Tenant) -> None:
    ctx = tenant()
    resource = ListenerRule()
    resource.create(ctx, resource.observe(ctx))
    observed = resource.observe(ctx)
    ctx.clients.elbv2.delete_rule(RuleArn=ctx.ids["listenerRuleArn"])
    with pytest.raises(ClientError) as raised:  # how a recorded rule reads once it is gone
        ctx.clients.elbv2.describe_rules(RuleArns=[ctx.ids["listenerRuleArn"]])
    assert aws.error_code(raised.value) == "RuleNotFound" and resource.is_gone(raised.value)
    resource.delete(ctx, observed)  # the stale observation: gone is success
    assert not resource.observe(ctx).exists
