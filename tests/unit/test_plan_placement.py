"""Placement on the load balancer pool: what counts as room, and what a full pool says."""

from __future__ import annotations

from wpenv import plan
from wpenv.api.models import parse_spec
from wpenv.plan import (
    LoadBalancerQuotas,
    LoadBalancerUsage,
    pool_full_message,
    shortfall,
    tenant_targets,
)
from wpenv.settings import Settings

LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/{name}/50dc6c495c0c9188"
QUOTAS = LoadBalancerQuotas(rules=3, target_groups=3, targets=10)


def _usage(name: str, rules: int, groups: int, targets: int | None = None) -> LoadBalancerUsage:
    return LoadBalancerUsage(LB.format(name=name), rules, groups, targets)


def test_the_quotas_default_to_aws_s() -> None:
    assert LoadBalancerQuotas.of(Settings()) == LoadBalancerQuotas(100, 100, 1000)
    raised = Settings(rules_per_load_balancer=200)
    assert LoadBalancerQuotas.of(raised).rules == 200


def test_room_means_one_more_rule_target_group_and_the_tenant_s_targets() -> None:
    assert shortfall(_usage("a", 2, 2, 8), QUOTAS, 2) == []
    assert shortfall(_usage("a", 3, 0, 0), QUOTAS, 1) == ["rules 3/3"]
    assert shortfall(_usage("a", 0, 3, 0), QUOTAS, 1) == ["target groups 3/3"]
    assert shortfall(_usage("a", 0, 0, 9), QUOTAS, 2) == ["targets 9+2/10"]
    assert shortfall(_usage("a", 3, 3, 10), QUOTAS, 1) == [
        "rules 3/3", "target groups 3/3", "targets 10+1/10"
    ]


def test_targets_not_counted_yet_are_not_judged() -> None:
    """Targets cost a call per target group, so they are counted only where the rest fits."""
    assert shortfall(_usage("a", 0, 0), QUOTAS, 1000) == []
    assert shortfall(_usage("a", 3, 0), QUOTAS, 1000) == ["rules 3/3"]


def test_a_tenant_needs_a_target_per_task_at_the_scaler_s_maximum() -> None:
    assert tenant_targets(parse_spec({"tenantId": "acme", "replicas": 3})) == 3
    scaled = parse_spec({"tenantId": "acme", "replicas": 2,
                         "autoscaling": {"minReplicas": 2, "maxReplicas": 6}})
    assert tenant_targets(scaled) == 6


def test_a_full_pool_says_what_each_load_balancer_lacks_and_what_to_add() -> None:
    message = pool_full_message(
        [_usage("wpenv-1", 3, 2), _usage("wpenv-2", 1, 3, 4)], QUOTAS, 1
    )
    assert message.startswith("every load balancer in the pool is full (wpenv-1: rules 3/3; "
                              "wpenv-2: target groups 3/3)")
    assert "add a load balancer" in message and "WPENV_LOAD_BALANCER_ARNS" in message


def test_the_name_comes_from_the_arn() -> None:
    assert _usage("wpenv-internal-2", 0, 0).name == "wpenv-internal-2"
    assert LoadBalancerUsage("odd", 0, 0).name == "odd"


def test_the_target_ceiling_takes_each_declared_maximum_at_the_rollout_surge() -> None:
    assert plan.target_ceiling([], {}) == 0
    assert plan.target_ceiling(["wp-a", "wp-b"], {"wp-a": 3}) == 2 * 3 + 2 * plan.MOST_TASKS
