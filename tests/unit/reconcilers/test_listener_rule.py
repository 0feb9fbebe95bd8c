"""Rule conditions and slot choice on the listener pool, without AWS."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from wpenv.engine import make_context
from wpenv.errors import PermanentError
from wpenv.reconcilers import listener_rule as lr
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings


def _ctx(tenant: str = "acme", **spec: Any) -> Context:
    settings = Settings(listener_arns=["l1", "l2"])
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
    assert lr.forward_targets(actions) == {"tg1", "tg2"}
    assert lr.forward_targets(lr.desired_actions("tg")) == {"tg"}


def test_pick_slot_takes_the_first_listener_with_room_and_smallest_free_priority() -> None:
    assert lr.pick_slot([("l1", []), ("l2", [])], 2) == ("l1", 1)
    assert lr.pick_slot([("l1", [2]), ("l2", [])], 2) == ("l1", 1)
    assert lr.pick_slot([("l1", [1, 3]), ("l2", [])], 3) == ("l1", 2)
    assert lr.pick_slot([("l1", [1, 2]), ("l2", [1])], 2) == ("l2", 2)
    assert lr.pick_slot([("l1", [5, 1]), ("l2", [])], 2) == ("l2", 1)


def test_pick_slot_all_full_asks_for_another_listener() -> None:
    with pytest.raises(PermanentError) as raised:
        lr.pick_slot([("l1", [1, 2]), ("l2", [1, 7])], 2)
    assert raised.value.reason == "ListenerPoolFull"
    assert "add a listener" in str(raised.value)


def test_pick_slot_without_a_pool_is_permanent() -> None:
    with pytest.raises(PermanentError) as raised:
        lr.pick_slot([], 100)
    assert raised.value.reason == "NoListenerPool"


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
    lr.ListenerRule().remove_tolerant(_Clients(code), Settings(listener_arns=[]), found)


def test_a_gone_target_group_is_not_a_gone_rule() -> None:
    """TargetGroupNotFound contains "NotFound", but says nothing about the rule."""
    found = lr.PoolRule({"RuleArn": "r", "Priority": "1"}, "l1")
    with pytest.raises(ClientError):
        lr.ListenerRule().remove_tolerant(
            _Clients("TargetGroupNotFound"), Settings(listener_arns=[]), found
        )
    assert lr.ListenerRule().needs == ("TargetGroup",)
