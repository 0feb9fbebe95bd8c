"""The security group's desired ingress and its exact comparison, without AWS."""

from __future__ import annotations

from typing import Any

from wpenv.engine import make_context
from wpenv.reconcilers import security_group as sg
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings


def _ctx(tenant: str = "acme") -> Context:
    settings = Settings(
        vpc_id="vpc-1", alb_security_group_id="sg-alb", container_port=8080, load_balancer_arns=[]
    )
    return make_context("ns", tenant, {"tenantId": tenant}, settings=settings, clients=None)


def _echoed(*extra: dict[str, Any]) -> dict[str, Any]:
    """A group as DescribeSecurityGroups answers it: our rule (with UserId) plus `extra`."""
    ours = {
        "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
        "UserIdGroupPairs": [{"GroupId": "sg-alb", "UserId": "123456789012"}],
        "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
    }
    return {"GroupId": "sg-t", "IpPermissions": [ours, *extra]}


def test_desired_ingress_is_only_the_container_port_from_the_alb() -> None:
    rules = sg.desired_ingress(_ctx())
    assert len(rules) == 1
    rule = rules[0]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 8080, 8080)
    assert [p["GroupId"] for p in rule["UserIdGroupPairs"]] == ["sg-alb"]
    assert "IpRanges" not in rule and "Ipv6Ranges" not in rule


def test_echoed_rule_is_up_to_date_despite_server_fields() -> None:
    assert sg.rule_differences(_ctx(), _echoed()) == (set(), set())


def test_hand_added_rule_is_extra_and_revocable() -> None:
    ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    extra, missing = sg.rule_differences(_ctx(), _echoed(ssh))
    assert extra == {("tcp", 22, 22, "IpRanges", "0.0.0.0/0")} and missing == set()
    assert sg.to_permission(next(iter(extra))) == ssh


def test_rule_from_another_group_does_not_count_as_ours() -> None:
    group = {"GroupId": "sg-t", "IpPermissions": [{
        "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
        "UserIdGroupPairs": [{"GroupId": "sg-other"}],
    }]}
    extra, missing = sg.rule_differences(_ctx(), group)
    assert len(extra) == 1 and missing == sg.flatten(sg.desired_ingress(_ctx()))


def test_missing_tags() -> None:
    ctx = _ctx()
    assert sg.missing_tags(ctx, {"Tags": ctx.tag_list}) == {}
    assert sg.missing_tags(ctx, {}) == ctx.tags
