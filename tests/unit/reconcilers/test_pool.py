"""The load balancer pool on moto's in-process ELBv2: endpoints, usage and placement."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.platform.aws import ensure_load_balancer_pool
from tests.unit.reconcilers.counted import Clients, Elbv2
from wpenv.engine import make_context
from wpenv.errors import TransientError
from wpenv.plan import Endpoint, LoadBalancerUsage
from wpenv.reconcilers import pool
from wpenv.reconcilers.observations import Observations
from wpenv.reconcilers.placement import Placement
from wpenv.settings import Settings


@dataclass
class Pool:
    clients: Clients
    arns: list[str]
    vpc: str

    def settings(self, **quotas: int) -> Settings:
        return Settings(load_balancer_arns=self.arns, vpc_id=self.vpc).model_copy(
            update=quotas)

    def target_group(self, name: str) -> str:
        created = self.clients.elbv2.client.create_target_group(
            Name=name, Protocol="HTTP", Port=80, VpcId=self.vpc, TargetType="ip")
        return str(created["TargetGroups"][0]["TargetGroupArn"])

    def rule(self, load_balancer: int, priority: int, target_group: str) -> None:
        listener = pool.https_listener(self.clients, self.arns[load_balancer])
        self.clients.elbv2.client.create_rule(
            ListenerArn=listener, Priority=priority,
            Conditions=[{"Field": "path-pattern",
                         "PathPatternConfig": {"Values": [f"/{priority}"]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": target_group}])


@pytest.fixture
def two(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pool]:
    """Two internal ALBs with an HTTPS listener each, as the platform bootstraps them."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24",
                                     AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
                   for i, zone in ((1, "a"), (2, "b"))]
        group = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc)
        session = boto3.session.Session(region_name="us-east-1")
        arns = ensure_load_balancer_pool(session.client, subnets, group["GroupId"])
        yield Pool(Clients(Elbv2(session.client("elbv2"))), arns, vpc)


def _ctx(settings: Settings, clients: Clients, tenant: str = "acme", **spec: Any) -> Any:
    return make_context("ns", tenant, {"tenantId": tenant, **spec}, settings=settings,
                        clients=clients)


def test_each_load_balancer_answers_on_its_https_listener_read_once(two: Pool) -> None:
    first, second = (pool.https_listener(two.clients, arn) for arn in two.arns)
    assert pool.load_balancer_of(first) == two.arns[0]
    found = pool.endpoint(two.clients, second)
    dns = two.clients.elbv2.client.describe_load_balancers(
        LoadBalancerArns=[two.arns[1]])["LoadBalancers"][0]["DNSName"]
    assert found == Endpoint(str(dns), 443, "HTTPS")
    two.clients.elbv2.calls.clear()
    assert pool.endpoint(two.clients, second) == found
    assert pool.https_listener(two.clients, two.arns[1]) == second
    assert two.clients.elbv2.calls == [], "the pool is read once per process"
    with pytest.raises(LookupError):
        pool.endpoint(two.clients, second[:-4] + "0000")


def test_usage_reads_the_tenants_listener_now_and_the_others_once_per_ttl(two: Pool) -> None:
    listeners = pool.listeners(two.clients, two.arns[0])
    assert len(listeners) == 2, "HTTPS for tenants, HTTP that redirects"
    shared = Observations(60.0)
    two.clients.elbv2.calls.clear()
    pool.usage(two.clients, two.arns[0], shared)
    assert two.clients.elbv2.calls == ["get_paginator", "get_paginator"]
    group = two.target_group("tg-now")
    two.rule(0, 7, group)  # a tenant's rule, made since: counted at once
    two.clients.elbv2.calls.clear()
    found, _ = pool.usage(two.clients, two.arns[0], shared)
    assert (found.rules, two.clients.elbv2.calls) == (1, ["get_paginator"])


def test_usage_counts_rules_and_each_target_group_once_per_load_balancer(two: Pool) -> None:
    groups = [two.target_group(f"tg-{i}") for i in range(2)]
    two.rule(0, 1, groups[0])
    two.rule(0, 2, groups[0])  # the same target group again: still one
    two.rule(0, 3, groups[1])
    found, arns = pool.usage(two.clients, two.arns[0])
    assert (found.rules, found.target_groups, arns) == (3, 2, set(groups))
    assert pool.usage(two.clients, two.arns[1])[0].rules == 0  # the default rule is free
    assert pool.count_targets(two.clients, arns) == 0
    two.clients.elbv2.client.register_targets(
        TargetGroupArn=groups[1], Targets=[{"Id": "10.9.1.7"}, {"Id": "10.9.1.8"}])
    assert pool.count_targets(two.clients, arns) == 2


def test_placement_fills_the_first_then_the_next_and_waits_when_full(two: Pool) -> None:
    settings = two.settings(rules_per_load_balancer=2)
    assert pool.place(two.clients, settings, 2)[0] == two.arns[0]
    for priority in (1, 2):
        two.rule(0, priority, two.target_group(f"a{priority}"))
    placed, listener = pool.place(two.clients, settings, 2)
    assert (placed, listener) == (two.arns[1], pool.https_listener(two.clients, two.arns[1]))
    for priority in (1, 2):
        two.rule(1, priority, two.target_group(f"b{priority}"))
    with pytest.raises(TransientError) as raised:
        pool.place(two.clients, settings, 2)
    assert raised.value.reason == "LoadBalancerPoolFull"
    assert "wpenv-internal-1: rules 2/2; wpenv-internal-2: rules 2/2" in str(raised.value)
    assert "add a load balancer" in str(raised.value)


def test_targets_are_counted_only_where_rules_and_groups_fit(two: Pool) -> None:
    group = two.target_group("busy")
    two.rule(0, 1, group)
    two.clients.elbv2.client.register_targets(
        TargetGroupArn=group, Targets=[{"Id": f"10.9.1.{i}"} for i in range(3)])
    settings = two.settings(targets_per_load_balancer=4)
    assert pool.place(two.clients, settings, 1)[0] == two.arns[0]
    assert pool.place(two.clients, settings, 2)[0] == two.arns[1]  # 3 + 2 > 4 on the first

    two.clients.elbv2.calls.clear()
    full_by_rules = two.settings(rules_per_load_balancer=1, targets_per_load_balancer=4)
    assert pool.place(two.clients, full_by_rules, 2)[0] == two.arns[1]
    assert two.clients.elbv2.calls.count("describe_target_health") == 0, (
        "the first is full by rules: its targets are not worth a call per target group"
    )


def test_our_target_groups_are_bounded_by_declared_maxima_not_counted_one_by_one(
    two: Pool,
) -> None:
    """A placement must not cost a DescribeTargetHealth per tenant already there."""
    ours = [two.target_group(f"wp-t{i}") for i in range(3)]
    for priority, group in enumerate(ours, start=1):
        two.rule(0, priority, group)
    declared = [pool.Reserved(two.arns[0], f"wp-t{i}", 2) for i in range(3)]
    two.clients.elbv2.calls.clear()
    # 3 tenants declaring at most 2 tasks, 4 each during a rollout: 12 of 20 fit.
    assert pool.targets_held(two.clients, set(ours), declared, room=20) == (12, False)
    assert two.clients.elbv2.calls.count("describe_target_health") == 0
    # Undeclared (e.g. after a restart): the schema's most, 10 tasks, 20 in a rollout.
    assert pool.targets_held(two.clients, set(ours), [], room=60) == (60, False)
    assert two.clients.elbv2.calls.count("describe_target_health") == 0
    # Near the quota the ceiling does not fit: every group is counted, exactly.
    two.clients.elbv2.client.register_targets(
        TargetGroupArn=ours[0], Targets=[{"Id": "10.9.2.1"}, {"Id": "10.9.2.2"}])
    assert pool.targets_held(two.clients, set(ours), declared, room=11) == (2, True)
    assert two.clients.elbv2.calls.count("describe_target_health") == 3

    # Groups of others have no declared maximum: they are always counted.
    theirs = two.target_group("theirs")
    two.clients.elbv2.client.register_targets(
        TargetGroupArn=theirs, Targets=[{"Id": "10.9.3.1"}])
    two.clients.elbv2.calls.clear()
    assert pool.targets_held(two.clients, {*ours, theirs}, declared, room=20) == (13, False)
    assert two.clients.elbv2.calls.count("describe_target_health") == 1


def test_an_empty_pool_waits_too(two: Pool) -> None:
    with pytest.raises(TransientError) as raised:
        pool.place(two.clients, Settings(load_balancer_arns=[]), 1)
    assert raised.value.reason == "NoLoadBalancerPool"


def test_a_placed_tenant_reads_nothing_and_a_lost_one_is_found_by_its_target_group(
    two: Pool,
) -> None:
    settings = two.settings(rules_per_load_balancer=1)
    two.rule(0, 1, two.target_group("first"))
    ctx = _ctx(settings, two.clients)
    kind = Placement()
    assert not kind.observe(ctx).exists
    kind.create(ctx, kind.observe(ctx))
    assert ctx.ids["loadBalancerArn"] == two.arns[1]
    two.clients.elbv2.calls.clear()
    observed = kind.observe(ctx)
    assert observed.exists and observed.up_to_date and observed.ids == {
        "loadBalancerArn": two.arns[1], "listenerArn": ctx.ids["listenerArn"]}
    assert two.clients.elbv2.calls == [], "a recorded placement costs no AWS call"

    # Its rule attaches its target group to that load balancer; a lost status finds it.
    group = two.target_group(ctx.names.target_group)
    two.rule(1, 1, group)
    lost = _ctx(settings, two.clients)
    assert kind.observe(lost).ids == observed.ids
    kind.create(lost, kind.observe(lost))
    assert lost.ids["loadBalancerArn"] == two.arns[1]


LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/pool-1/abc"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/wp-acme/0123456789abcdef"


def test_a_target_group_name_comes_from_its_arn() -> None:
    assert pool.target_group_name(TG) == "wp-acme"


def test_reserved_places_count_until_their_rule_forwards_to_the_tenant() -> None:
    usage = LoadBalancerUsage(LB, rules=3, target_groups=3)
    reserved = [pool.Reserved(LB, "wp-acme", 2), pool.Reserved(LB, "wp-beta", 4),
                pool.Reserved("arn:elsewhere", "wp-gamma", 8)]
    counted, targets = pool.with_reserved(usage, {TG}, reserved)
    # wp-acme's rule is made (its target group is forwarded to): counted in AWS already.
    assert (counted.rules, counted.target_groups, targets) == (4, 4, 4)
    assert pool.with_reserved(usage, set(), []) == (usage, 0)


def test_load_balancers_found_full_lately_are_tried_last() -> None:
    pool._FULL.clear()
    try:
        pool._FULL["lb1"] = 1000.0
        assert pool.fill_order(["lb1", "lb2", "lb3"], 1000.0 + 1) == ["lb2", "lb3", "lb1"]
        later = 1000.0 + pool.FULL_SECONDS
        assert pool.fill_order(["lb1", "lb2", "lb3"], later) == ["lb1", "lb2", "lb3"]
    finally:
        pool._FULL.clear()
