"""The scaler's desired target and policy, and how described ones compare, without AWS."""

from __future__ import annotations

from typing import Any

import pytest

from wpenv.engine import make_context
from wpenv.reconcilers import autoscaling as asc
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings

SCALING = {"minReplicas": 2, "maxReplicas": 6, "targetCpuUtilization": 55}


def _ctx(**spec: Any) -> Context:
    settings = Settings(cluster_name="shared")
    return make_context(
        "ns", "acme", {"tenantId": "acme", **spec}, settings=settings, clients=None, ids={}
    )


def test_target_names_the_tenants_service_with_the_spec_bounds() -> None:
    assert asc.desired_target(_ctx(autoscaling=SCALING)) == {
        "ServiceNamespace": "ecs",
        "ResourceId": "service/shared/wpenv-acme",
        "ScalableDimension": "ecs:service:DesiredCount",
        "MinCapacity": 2,
        "MaxCapacity": 6,
        "SuspendedState": {
            "DynamicScalingInSuspended": False,
            "DynamicScalingOutSuspended": False,
            "ScheduledScalingSuspended": False,
        },
    }


def test_policy_tracks_average_cpu_under_a_deterministic_name() -> None:
    policy = asc.desired_policy(_ctx(autoscaling=SCALING))
    assert policy["PolicyName"] == "wpenv-acme-cpu"
    assert policy["PolicyName"] == asc.desired_policy(_ctx(autoscaling=SCALING))["PolicyName"]
    assert policy["ResourceId"] == "service/shared/wpenv-acme"
    assert policy["PolicyType"] == "TargetTrackingScaling"
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 55.0
    assert config["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
    }
    assert config["ScaleOutCooldown"] < config["ScaleInCooldown"]
    assert config["DisableScaleIn"] is False


def test_schema_defaults_apply() -> None:
    target = asc.desired_target(_ctx(autoscaling={}))
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 10)
    policy = asc.desired_policy(_ctx(autoscaling={}))
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 60.0


@pytest.mark.parametrize(
    ("spec", "wanted"),
    [
        ({}, False),
        ({"autoscaling": SCALING}, True),
        ({"autoscaling": SCALING, "suspended": True}, False),
        ({"suspended": True}, False),
    ],
)
def test_wanted_only_with_autoscaling_and_not_suspended(spec: dict[str, Any], wanted: bool) -> None:
    assert asc.Autoscaling().wanted(_ctx(**spec)) is wanted


def test_planning_without_autoscaling_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no autoscaling"):
        asc.desired_target(_ctx())
    with pytest.raises(ValueError, match="no autoscaling"):
        asc.desired_policy(_ctx())


def test_a_described_target_compares_on_bounds_and_suspension_only() -> None:
    ctx = _ctx(autoscaling=SCALING)
    described = {  # what AWS answers: more fields, SuspendedState may be partial
        "ServiceNamespace": "ecs", "ResourceId": "service/shared/wpenv-acme",
        "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 2, "MaxCapacity": 6,
        "RoleARN": "arn:aws:iam::1:role/aws-service-role/x", "CreationTime": 1.0,
        "ScalableTargetARN": "arn:aws:application-autoscaling:us-east-1:1:scalable-target/x",
        "SuspendedState": {"DynamicScalingInSuspended": False},
    }
    assert asc.target_shape(described) == asc.target_shape(asc.desired_target(ctx))
    assert asc.target_shape({**described, "MaxCapacity": 5}) != asc.target_shape(
        asc.desired_target(ctx)
    )
    paused = {**described, "SuspendedState": {"ScheduledScalingSuspended": True}}
    assert asc.target_shape(paused)["suspended"] == ["ScheduledScalingSuspended"]


def test_a_described_policy_compares_on_value_metric_and_cooldowns() -> None:
    ctx = _ctx(autoscaling=SCALING)
    want = asc.desired_policy(ctx)
    config = dict(want["TargetTrackingScalingPolicyConfiguration"])
    described: dict[str, Any] = {
        "PolicyARN": "arn:aws:autoscaling:...", "PolicyName": "wpenv-acme-cpu",
        "PolicyType": "TargetTrackingScaling", "Alarms": [],
        "TargetTrackingScalingPolicyConfiguration": {**config, "TargetValue": 55},  # an int
    }
    assert asc.policy_shape(described) == asc.policy_shape(want)
    del described["TargetTrackingScalingPolicyConfiguration"]["DisableScaleIn"]
    assert asc.policy_shape(described) == asc.policy_shape(want)  # absent means False
    other_metric = {**config, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}}
    assert asc.policy_shape(
        {**described, "TargetTrackingScalingPolicyConfiguration": other_metric}
    ) != asc.policy_shape(want)
    assert asc.policy_shape(
        {**described, "TargetTrackingScalingPolicyConfiguration": {**config, "TargetValue": 70}}
    ) != asc.policy_shape(want)
    assert asc.policy_shape(None) is None


def test_declarations_and_the_found_scalers_key() -> None:
    resource = asc.Autoscaling()
    assert resource.ids == ("scalableTarget",) and resource.needs == ("Service",)
    assert resource.gone == {"ObjectNotFoundException"} and not resource.retainable
    target = asc.desired_target(_ctx(autoscaling=SCALING))
    assert asc.Scaler(target).key == {
        "ServiceNamespace": "ecs",
        "ResourceId": "service/shared/wpenv-acme",
        "ScalableDimension": "ecs:service:DesiredCount",
    }
