"""Lifecycle end to end (HLD 3.2, 4.2): suspend, resume, scale, update, drift.

The user side is kubectl only (apply, patch, scale, get, wait); the AWS side is read, and
changed by hand for the drift tests, with plain boto3 against the emulator.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import boto3
import pytest

from tests.e2e import envs
from tests.e2e.conftest import DRIFT_SECONDS
from tests.platform import kube

pytestmark = pytest.mark.e2e


def _service(obj: envs.Obj) -> dict[str, Any]:
    arn = obj["status"]["resources"]["serviceArn"]
    found: dict[str, Any] = boto3.client("ecs").describe_services(
        cluster=os.environ["WPENV_CLUSTER_NAME"], services=[arn]
    )["services"][0]
    return found


def _rules_to(target_group_arn: str) -> list[dict[str, Any]]:
    elbv2 = boto3.client("elbv2")
    found = []
    for balancer in os.environ["WPENV_LOAD_BALANCER_ARNS"].split(","):
        listeners = elbv2.describe_listeners(LoadBalancerArn=balancer)["Listeners"]
        https = [item["ListenerArn"] for item in listeners if item["Protocol"] == "HTTPS"]
        found.extend(_rules_on(elbv2, https, target_group_arn))
    return found


def _rules_on(elbv2: Any, listeners: list[str], target_group_arn: str) -> list[dict[str, Any]]:
    found = []
    for listener in listeners:
        for rule in elbv2.describe_rules(ListenerArn=listener)["Rules"]:
            if any(a.get("TargetGroupArn") == target_group_arn for a in rule["Actions"]):
                found.append(rule)
    return found


def _active() -> Any:
    def check(obj: envs.Obj) -> bool:
        return envs.phase(obj) == "Active" and envs.condition(obj, "Ready").get("status") == "True"

    return check


@pytest.fixture
def shop(platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str) -> str:
    """An Active environment with two tasks, named "shop" in the test's namespace."""
    envs.apply(platform, namespace, "shop", tenantId=envs.tenant(), replicas=2)
    envs.wait_ready(platform, namespace, "shop")
    return "shop"


def test_suspend_then_resume(platform: dict[str, str], namespace: str, shop: str) -> None:
    before = envs.get(platform, namespace, shop)
    target_group = before["status"]["resources"]["targetGroupArn"]
    assert len(_rules_to(target_group)) == 1

    envs.patch(platform, namespace, shop, {"suspended": True})
    obj = envs.wait_for(platform, namespace, shop,
                        lambda o: envs.phase(o) == "Suspended" and o["status"]["replicas"] == 0,
                        what="phase Suspended with no task running")
    assert _service(obj)["desiredCount"] == 0
    assert _rules_to(target_group) == [], "the rule goes while suspended (the default)"
    assert "listenerRuleArn" not in obj["status"]["resources"]
    assert envs.condition(obj, "Suspended")["status"] == "True"
    row = kube.kubectl("get", "wpenv", shop, "-n", namespace, env=platform).stdout
    assert row.splitlines()[1].split()[1] == "Suspended"

    envs.patch(platform, namespace, shop, {"suspended": False})
    obj = envs.wait_for(platform, namespace, shop, _active(), what="Active again")
    assert _service(obj)["desiredCount"] == 2
    assert obj["status"]["readyReplicas"] == 2
    assert len(_rules_to(target_group)) == 1
    assert envs.condition(obj, "Suspended")["reason"] == "Resumed"
    reasons = [e["reason"] for e in envs.events(platform, namespace, shop)]
    assert "Removed" in reasons


def test_suspend_keeps_the_rule_when_asked(
    platform: dict[str, str], namespace: str, shop: str
) -> None:
    envs.patch(platform, namespace, shop,
               {"suspended": True, "routing": {"removeRuleWhenSuspended": False}})
    obj = envs.wait_for(platform, namespace, shop, lambda o: envs.phase(o) == "Suspended",
                        what="phase Suspended")
    assert _service(obj)["desiredCount"] == 0
    assert len(_rules_to(obj["status"]["resources"]["targetGroupArn"])) == 1


def test_suspend_asked_while_provisioning_applies_once_active(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    envs.apply(platform, namespace, "later", tenantId=envs.tenant(), suspended=True)
    deferred = envs.wait_for(
        platform, namespace, "later",
        lambda o: envs.condition(o, "Suspended").get("reason") == "Deferred",
        what="the deferred suspend to be reported",
    )
    assert "once the environment is Active" in envs.condition(deferred, "Suspended")["message"]
    obj = envs.wait_for(platform, namespace, "later", lambda o: envs.phase(o) == "Suspended",
                        what="phase Suspended")
    assert obj["status"]["provisioning"]["finishedAt"], "it was provisioned (Active) first"
    assert _service(obj)["desiredCount"] == 0


def test_kubectl_scale_changes_the_desired_count(
    platform: dict[str, str], namespace: str, shop: str
) -> None:
    kube.kubectl("scale", f"wpenv/{shop}", "-n", namespace, "--replicas=3", env=platform)
    obj = envs.wait_for(
        platform, namespace, shop,
        lambda o: (o.get("status") or {}).get("readyReplicas") == 3 and _active()(o),
        what="three ready replicas",
    )
    assert obj["spec"]["replicas"] == 3
    assert _service(obj)["desiredCount"] == 3
    assert obj["status"]["replicas"] == 3


def test_autoscaling_bounds_make_a_scalable_target(
    platform: dict[str, str], namespace: str, shop: str
) -> None:
    envs.patch(platform, namespace, shop,
               {"autoscaling": {"minReplicas": 2, "maxReplicas": 6, "targetCpuUtilization": 50}})
    obj = envs.wait_for(platform, namespace, shop,
                        lambda o: bool(o["status"]["resources"].get("scalableTarget"))
                        and _active()(o), what="a scalable target")
    service = _service(obj)
    resource_id = f"service/{os.environ['WPENV_CLUSTER_NAME']}/{service['serviceName']}"
    scaling = boto3.client("application-autoscaling")
    targets = scaling.describe_scalable_targets(ServiceNamespace="ecs",
                                                ResourceIds=[resource_id])["ScalableTargets"]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(2, 6)]
    policies = scaling.describe_scaling_policies(ServiceNamespace="ecs",
                                                 ResourceId=resource_id)["ScalingPolicies"]
    assert len(policies) == 1
    config = policies[0]["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 50


def test_image_update_rolls_out_and_a_rolled_back_one_is_reported(
    platform: dict[str, str], namespace: str, shop: str
) -> None:
    first = envs.get(platform, namespace, shop)["status"]["resources"]["taskDefinitionArn"]
    envs.patch(platform, namespace, shop, {"image": "wordpress:6.9-apache"})
    obj = envs.wait_for(
        platform, namespace, shop,
        lambda o: o["status"]["resources"]["taskDefinitionArn"] != first
        and envs.condition(o, "Rollout").get("reason") == "Completed"
        and o["status"]["resources"]["taskDefinitionArn"].rpartition("/")[2]
        in envs.condition(o, "Rollout")["message"] and _active()(o),
        what="the new revision rolled out",
    )
    second = obj["status"]["resources"]["taskDefinitionArn"]
    assert _service(obj)["taskDefinition"] == second
    assert second.rpartition("/")[2] in envs.condition(obj, "Rollout")["message"]

    envs.patch(platform, namespace, shop, {"image": "wordpress:broken"})
    obj = envs.wait_for(
        platform, namespace, shop,
        lambda o: envs.condition(o, "Rollout").get("reason") == "RolledBack" and _active()(o),
        timeout=180, what="the rollback reported, the old revision serving",
    )
    assert _service(obj)["taskDefinition"] == second, "the previous revision keeps serving"
    assert "broken" not in str(envs.condition(obj, "Ready"))
    warnings = [e for e in envs.events(platform, namespace, shop) if e["reason"] == "RolledBack"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"


def test_drift_is_repaired_and_an_idle_check_writes_nothing(
    platform: dict[str, str], namespace: str, shop: str
) -> None:
    obj = envs.get(platform, namespace, shop)
    ids = obj["status"]["resources"]
    ecs = boto3.client("ecs")
    cluster = os.environ["WPENV_CLUSTER_NAME"]

    # An idle environment: over several drift periods, no Kubernetes write at all.
    time.sleep(1)  # let the last status write of provisioning land
    version = envs.get(platform, namespace, shop)["metadata"]["resourceVersion"]
    time.sleep(DRIFT_SECONDS * 3 + 1)
    assert envs.get(platform, namespace, shop)["metadata"]["resourceVersion"] == version

    # By hand: the desired count, the listener rule and the database secret.
    ecs.update_service(cluster=cluster, service=ids["serviceArn"], desiredCount=1)
    boto3.client("elbv2").delete_rule(RuleArn=ids["listenerRuleArn"])
    boto3.client("secretsmanager").delete_secret(SecretId=ids["dbSecretArn"],
                                                 ForceDeleteWithoutRecovery=True)
    secrets = boto3.client("secretsmanager")

    def repaired(obj: envs.Obj) -> bool:
        if _service(obj)["desiredCount"] != 2 or len(_rules_to(ids["targetGroupArn"])) != 1:
            return False
        arn = obj["status"]["resources"].get("dbSecretArn")
        try:
            return arn is not None and "DeletedDate" not in secrets.describe_secret(SecretId=arn)
        except secrets.exceptions.ResourceNotFoundException:
            return False

    # The three may be repaired by one drift pass or by two (a pass can run in between).
    obj = envs.wait_for(platform, namespace, shop, lambda o: repaired(o) and _active()(o),
                        timeout=DRIFT_SECONDS * 10, what="every hand-made change repaired")
    message = next(e["message"] for e in envs.events(platform, namespace, shop)
                   if e["reason"] == "DriftCorrected")
    assert "ListenerRule" in message or "Service" in message


def test_a_change_reverted_before_it_settled_is_still_reconciled(
    platform: dict[str, str], namespace: str, shop: str
) -> None:
    """Suspend, then resume while the suspend is still converging.

    kopf sees the resumed spec as equal to the last one it finished (not suspended) and
    drops the unfinished handler; the catch-up timer must notice and reconcile it.
    """
    envs.patch(platform, namespace, shop, {"suspended": True})
    obj = envs.wait_for(platform, namespace, shop, lambda o: _service(o)["desiredCount"] == 0,
                        what="the scale-down under way")
    envs.patch(platform, namespace, shop, {"suspended": False})
    obj = envs.wait_for(
        platform, namespace, shop,
        lambda o: _service(o)["desiredCount"] == 2 and _active()(o)
        and o["status"]["observedGeneration"] == o["metadata"]["generation"],
        timeout=120, what="the resume reconciled",
    )
    assert obj["status"]["readyReplicas"] == 2
    assert len(_rules_to(obj["status"]["resources"]["targetGroupArn"])) == 1
