"""Rule conditions, priorities and quota refusals of the tenant's rule, without AWS."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from wpenv.engine import make_context
from wpenv.reconcilers import listener_rule as lr
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.pool import forward_targets
from wpenv.settings import Settings


def _ctx(tenant: str = "acme", **spec: Any) -> Context:
    settings = Settings(load_balancer_arns=["lb1", "lb2"])
    return make_context(
        "ns", tenant, {"tenantId": tenant, **spec}, settings=settings, clients=None
    )


def test_default_prefix_is_the_tenant_id() -> None:
    assert lr.desired_conditions(_ctx()) == [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/acme", "/acme/*"]}}
    ]


def test_spec_prefix_and_host() -> None:
    ctx = _ctx(routing={"pathPrefix": "/shop/acme", "host": "acme.example.com"})
    assert lr.desired_conditions(ctx) == [
        {"Field": "path-pattern",
         "PathPatternConfig": {"Values": ["/shop/acme", "/shop/acme/*"]}},
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["acme.example.com"]}},
    ]


def test_condition_sets_ignore_order_and_form() -> None:
    aws_echo = [  # AWS echoes both the legacy Values and the *Config form
        {"Field": "path-pattern", "Values": ["/acme/*", "/acme"],
         "PathPatternConfig": {"Values": ["/acme/*", "/acme"]}},
    ]
    assert lr.condition_sets(aws_echo) == lr.condition_sets(lr.desired_conditions(_ctx()))
    other = [{"Field": "path-pattern", "Values": ["/other"]}]
    assert lr.condition_sets(other) != lr.condition_sets(lr.desired_conditions(_ctx()))
    with_host = lr.desired_conditions(_ctx(routing={"host": "a.example.com"}))
    assert lr.condition_sets(with_host) != lr.condition_sets(lr.desired_conditions(_ctx()))


def test_forward_targets_reads_plain_and_weighted_forms() -> None:
    actions: list[dict[str, Any]] = [
        {"Type": "forward", "TargetGroupArn": "tg1"},
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "tg2"}]}},
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}},
    ]
    assert forward_targets(actions) == {"tg1", "tg2"}
    assert forward_targets(lr.desired_actions("tg")) == {"tg"}


def test_a_new_rule_takes_the_first_free_priority_from_where_it_starts() -> None:
    assert lr.free_priority([]) == 1
    assert lr.free_priority([2]) == 1
    assert lr.free_priority([1, 3]) == 2
    assert lr.free_priority([5, 1, 2]) == 3
    assert lr.free_priority([7, 8], start=7) == 9
    assert lr.free_priority([lr.MAX_PRIORITY], start=lr.MAX_PRIORITY) == 1, "wraps"


def test_tenants_made_at_once_start_their_search_at_different_priorities() -> None:
    starts = {lr.preferred_priority(f"org-{i}") for i in range(100)}
    assert len(starts) >= 99, "100 tenants picking at once barely ever collide"
    assert all(1 <= p <= lr.MAX_PRIORITY for p in starts)
    assert lr.preferred_priority("org-1") == lr.preferred_priority("org-1"), "deterministic"


LISTENER = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/wpenv-1/abc/def"


@pytest.mark.parametrize(
    "code", ["TooManyRules", "TooManyUniqueTargetGroupsPerLoadBalancer", "TooManyTargets"]
)
def test_a_quota_refusal_drops_the_placement_and_waits(code: str) -> None:
    ctx = _ctx()
    ctx.ids.update({"loadBalancerArn": "lb", "listenerArn": LISTENER, "targetGroupArn": "tg"})
    exc = ClientError({"Error": {"Code": code, "Message": "x"}}, "CreateRule")
    waiting = lr.quota_refusal(ctx, LISTENER, exc)
    assert waiting is not None and waiting.reason == "LoadBalancerFull"
    assert "wpenv-1" in str(waiting) and code in str(waiting)
    assert "loadBalancerArn" not in ctx.ids and "listenerArn" not in ctx.ids
    assert ctx.ids["targetGroupArn"] == "tg"


def test_other_refusals_keep_the_placement() -> None:
    ctx = _ctx()
    ctx.ids.update({"loadBalancerArn": "lb", "listenerArn": LISTENER})
    exc = ClientError({"Error": {"Code": "TooManyTargetGroups", "Message": "x"}}, "CreateRule")
    assert lr.quota_refusal(ctx, LISTENER, exc) is None  # the account's, not the LB's
    assert ctx.ids["listenerArn"] == LISTENER


def test_listener_of_a_rule_arn() -> None:
    head = "arn:aws:elasticloadbalancing:us-east-1:1"
    rule = f"{head}:listener-rule/app/alb/abc/def/123"
    assert lr.listener_of(rule) == f"{head}:listener/app/alb/abc/def"


class _Elb:
    """Answers DeleteRule with one error code (a stand-in client, not a patched boto3)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def delete_rule(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "DeleteRule")


class _Clients:
    def __init__(self, code: str) -> None:
        self.elbv2 = _Elb(code)


@pytest.mark.parametrize("code", ["RuleNotFound", "ListenerNotFound"])
def test_rule_or_listener_not_found_means_the_rule_is_gone(code: str) -> None:
    found = lr.PoolRule({"RuleArn": "r", "Priority": "1"}, "l1")
    lr.ListenerRule().remove_tolerant(_Clients(code), Settings(), found)


def test_a_gone_target_group_is_not_a_gone_rule() -> None:
    """TargetGroupNotFound contains "NotFound", but says nothing about the rule."""
    found = lr.PoolRule({"RuleArn": "r", "Priority": "1"}, "l1")
    with pytest.raises(ClientError):
        lr.ListenerRule().remove_tolerant(
            _Clients("TargetGroupNotFound"), Settings(), found
        )
    assert lr.ListenerRule().needs == ("Placement", "TargetGroup")
