"""Provisioning end to end: kubectl apply -> Active, checked in AWS (moto) and MySQL.

The user side is kubectl only; the AWS side is read with plain boto3 against the emulator
and the MySQL side with a real connection, as an auditor would check it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest

from tests.conftest import SPARE_OPERATOR_HEALTH_PORT
from tests.e2e import envs
from tests.platform import kube

pytestmark = pytest.mark.e2e


def test_apply_to_active_with_every_resource_in_place(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    tenant = envs.tenant()
    obj = envs.provision(platform, namespace, "shop", tenantId=tenant, replicas=2)
    status = obj["status"]
    assert status["phase"] == "Active"
    assert status["replicas"] == 2
    assert status["readyReplicas"] == 2
    assert status["url"].endswith(f"/{tenant}/")
    assert status["url"].startswith("https://")  # every load balancer of the pool is HTTPS
    times = status["provisioning"]
    assert times["queuedAt"] and times["startedAt"] and times["finishedAt"]
    assert times["withinTarget"] is True
    conditions = {c["type"]: c for c in status["conditions"]}
    for group in ("Storage", "Network", "Permissions", "Database", "Compute", "Routing"):
        assert conditions[group]["status"] == "True", conditions[group]
    ids = status["resources"]

    ecs = boto3.client("ecs")
    service = ecs.describe_services(cluster=os.environ["WPENV_CLUSTER_NAME"],
                                    services=[ids["serviceArn"]])["services"][0]
    assert service["desiredCount"] == 2
    assert service["runningCount"] == 2
    assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    taskdef = ecs.describe_task_definition(taskDefinition=ids["taskDefinitionArn"])
    container = taskdef["taskDefinition"]["containerDefinitions"][0]
    assert not any("PASSWORD" in e["name"] for e in container.get("environment", []))
    assert any(s["valueFrom"].startswith(ids["dbSecretArn"]) for s in container["secrets"])
    volume = taskdef["taskDefinition"]["volumes"][0]["efsVolumeConfiguration"]
    assert volume["transitEncryption"] == "ENABLED"
    assert volume["authorizationConfig"]["accessPointId"] == ids["accessPointId"]

    elbv2 = boto3.client("elbv2")
    rule = elbv2.describe_rules(RuleArns=[ids["listenerRuleArn"]])["Rules"][0]
    assert rule["Actions"][0]["TargetGroupArn"] == ids["targetGroupArn"]
    health = elbv2.describe_target_health(TargetGroupArn=ids["targetGroupArn"])
    assert sum(t["TargetHealth"]["State"] == "healthy"
               for t in health["TargetHealthDescriptions"]) == 2

    # Rotation configured on the platform: on once the user logged in, its test passed.
    described = boto3.client("secretsmanager").describe_secret(SecretId=ids["dbSecretArn"])
    assert described["RotationEnabled"] is True
    assert list(described["VersionIdsToStages"].values()) == [["AWSCURRENT"]]
    assert ids["databaseLoginProven"] == ids["dbSecretArn"]
    role = boto3.client("iam").get_role(RoleName=ids["taskRoleArn"].rpartition("/")[2])["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"].endswith(
        ":policy/wpenv-tenant-boundary")

    secret = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=ids["dbSecretArn"])["SecretString"])
    conn = pymysql.connect(host=secret["host"], port=int(secret["port"]),
                           user=secret["username"], password=secret["password"],
                           database=secret["dbname"])
    with conn, conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == (secret["dbname"],)

    events = kube.kubectl("get", "events", "-n", namespace, "--field-selector",
                          "involvedObject.name=shop", "-o", "json", env=platform).stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"Provisioning", "Created", "Active"} <= reasons
    described = kube.kubectl("describe", "wpenv", "shop", "-n", namespace, env=platform).stdout
    assert "Created" in described
    assert secret["password"] not in described
    assert secret["password"] not in json.dumps(obj)

    table = kube.kubectl("get", "wpenv", "shop", "-n", namespace, env=platform).stdout
    row = table.splitlines()[1].split()
    assert row[1:4] == ["Active", "True", "2"]


def test_operator_killed_mid_provision_converges_with_one_of_each(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str,
    local: Path, operator_env: dict[str, str],
) -> None:
    """Kill -9 the operator once the database is recorded, start a new one: no duplicates."""
    tenant = envs.tenant()
    victim = kube.start_operator(
        operator_env, local / "operator-victim.log", SPARE_OPERATOR_HEALTH_PORT
    )
    try:
        operator.send_signal(signal.SIGSTOP)  # only the victim works on this one
        envs.apply(platform, namespace, "crash", tenantId=tenant)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ids = envs.get(platform, namespace, "crash").get("status", {}).get("resources", {})
            if ids.get("databaseName"):
                break
            time.sleep(0.2)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
    finally:
        operator.send_signal(signal.SIGCONT)
        kube.stop_operator(victim)
    envs.wait_ready(platform, namespace, "crash")
    envs.assert_one_of_each(namespace, "crash", tenant)


def test_failed_provision_rolls_back_and_a_spec_change_provisions_again(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    """A first rollout that fails (the simulator fails images ending in :broken)."""
    tenant = envs.tenant()
    envs.apply(platform, namespace, "bad", tenantId=tenant, image="wordpress:broken")
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = envs.get(platform, namespace, "bad").get("status", {})
        if status.get("phase") == "Failed":
            break
        time.sleep(0.5)
    assert status.get("phase") == "Failed", status
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "DeploymentFailed"
    left = envs.tagged_resources(namespace, "bad")
    assert left == [], "a failed provision must leave nothing behind"

    envs.apply(platform, namespace, "bad", tenantId=tenant, image="wordpress:6.8-apache")
    envs.wait_ready(platform, namespace, "bad")
    assert envs.get(platform, namespace, "bad")["status"]["phase"] == "Active"


def test_a_second_manifest_for_the_same_tenant_is_refused(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    """Names derive from the tenant id: the older manifest keeps it, the newer one fails."""
    tenant = envs.tenant()
    envs.apply(platform, namespace, "first", tenantId=tenant)
    envs.wait_ready(platform, namespace, "first")
    other = f"{namespace}-b"
    kube.kubectl("create", "namespace", other, env=platform)
    envs.apply(platform, other, "second", tenantId=tenant)
    obj = envs.wait_for(platform, other, "second", lambda o: envs.phase(o) == "Failed",
                        what="the duplicate to fail")
    ready = envs.condition(obj, "Ready")
    assert ready["reason"] == "TenantIdInUse"
    assert f"{namespace}/first" in ready["message"]
    assert not (obj["status"].get("resources") or {}), "it touched nothing in AWS"
    first = envs.get(platform, namespace, "first")
    assert envs.phase(first) == "Active"


def _listener_rule_paths(obj: envs.Obj) -> set[str]:
    """The path patterns of the environment's listener rule, read from the emulated ALB."""
    arn = obj["status"]["resources"]["listenerRuleArn"]
    rules = boto3.client("elbv2").describe_rules(RuleArns=[arn])["Rules"]
    return {value for cond in rules[0]["Conditions"] if cond["Field"] == "path-pattern"
            for value in cond["PathPatternConfig"]["Values"]}


def test_an_overlapping_route_is_refused_and_the_older_one_keeps_serving(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    """/<t> holds /<t>/blog: the newer manifest fails (RouteInUse) before touching AWS.

    It does not proceed by itself once the route is free: like any Failed environment it
    tries again when its spec changes. A serving environment that moves onto a route in
    use keeps its phase and its rule; only the change is refused.
    """
    first, second = envs.tenant(), envs.tenant()
    envs.apply(platform, namespace, "first", tenantId=first)
    envs.wait_ready(platform, namespace, "first")
    other = f"{namespace}-b"
    kube.kubectl("create", "namespace", other, env=platform)
    envs.apply(platform, other, "second", tenantId=second,
               routing={"pathPrefix": f"/{first}/blog"})
    obj = envs.wait_for(platform, other, "second", lambda o: envs.phase(o) == "Failed",
                        what="the overlapping route to fail")
    ready = envs.condition(obj, "Ready")
    assert ready["reason"] == "RouteInUse"
    assert f"route /{first}/blog on any host overlaps the route of {namespace}/first" in (
        ready["message"])
    assert not (obj["status"].get("resources") or {}), "it touched nothing in AWS"
    older = envs.get(platform, namespace, "first")
    assert envs.phase(older) == "Active"
    assert _listener_rule_paths(older) == {f"/{first}", f"/{first}/*"}

    envs.patch(platform, namespace, "first", {"routing": {"pathPrefix": f"/{first}-moved"}})
    moved_paths = {f"/{first}-moved", f"/{first}-moved/*"}
    envs.wait_for(platform, namespace, "first", lambda o: _listener_rule_paths(o) == moved_paths,
                  what="the first to move")
    envs.patch(platform, other, "second", {"replicas": 1})  # any change: try again
    envs.wait_ready(platform, other, "second")
    assert envs.phase(envs.get(platform, other, "second")) == "Active"

    envs.patch(platform, namespace, "first", {"routing": {"pathPrefix": f"/{first}"}})
    moved = envs.wait_for(
        platform, namespace, "first",
        lambda o: envs.condition(o, "Ready").get("reason") == "RouteInUse",
        what="the move back to be refused",
    )
    assert envs.phase(moved) == "Active", "it keeps serving its current route"
    assert f"overlaps the route of {other}/second" in envs.condition(moved, "Ready")["message"]
    assert _listener_rule_paths(moved) == moved_paths
