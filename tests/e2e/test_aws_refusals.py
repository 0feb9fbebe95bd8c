"""Values the API server accepts but AWS does not: a readable reason, and nothing left.

- An image that cannot be pulled: ECS stops every task with CannotPullContainerError and
  the circuit breaker fails the first deployment (the platform's ECS: an image ending in
  `:broken`, tests/platform/task_start.py). Permanent: the environment is Failed with the
  reason and ECS's words, and the rollback leaves nothing an orphan scan by tag could find.
- The account's user pool quota is used up: the environment waits (a condition says so,
  never Failed) and builds nothing meanwhile.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import boto3
import pytest

from tests.conftest import SPARE_OPERATOR_HEALTH_PORT
from tests.e2e import envs
from tests.kubeapi import api_for
from tests.platform import kube
from wpenv import reasons
from wpenv.aws import Clients
from wpenv.orphans.scan import scan
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e


def scanned_for(platform: dict[str, str], tenant: str) -> list[str]:
    """What the orphan scan (every kind, by tag and MySQL name) finds of `tenant`."""
    settings = Settings()
    result = scan(settings, Clients(settings), api_for(platform["KUBECONFIG"]))
    assert result.complete, result.errors
    return [f"{item.kind} {item.id}" for item in (*result.orphans, *result.owned,
                                                   *result.retained) if item.tenant == tenant]


def test_an_image_that_cannot_be_pulled_fails_with_ecs_words_and_leaves_nothing(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    tenant = envs.tenant()
    envs.apply(platform, namespace, "nopull", tenantId=tenant, image="wordpress:broken")
    obj = envs.wait_for(platform, namespace, "nopull", lambda o: envs.phase(o) == "Failed",
                        timeout=180, what="the unpullable image to fail")
    ready = envs.condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reasons.DEPLOYMENT_FAILED)
    assert "CannotPullContainerError" in ready["message"], ready
    assert "wordpress:broken" in ready["message"], ready
    assert not (obj["status"].get("resources") or {}), "the rollback cleared every id"
    assert envs.tagged_resources(namespace, "nopull") == []
    assert scanned_for(platform, tenant) == []


def test_at_the_user_pool_quota_an_environment_waits_and_builds_nothing(
    platform: dict[str, str], operator: subprocess.Popen[bytes], operator_env: dict[str, str],
    local: Path, namespace: str,
) -> None:
    idp = boto3.client("cognito-idp")
    someone_elses = idp.create_user_pool(PoolName=f"other-{envs.tenant()}")["UserPool"]["Id"]
    try:
        pools = idp.get_paginator("list_user_pools").paginate(MaxResults=60)
        in_use = sum(len(page["UserPools"]) for page in pools)
        _waits_at_the_quota(platform, operator, operator_env, local, namespace, in_use)
    finally:
        idp.delete_user_pool(UserPoolId=someone_elses)


def _waits_at_the_quota(
    platform: dict[str, str], operator: subprocess.Popen[bytes], operator_env: dict[str, str],
    local: Path, namespace: str, in_use: int,
) -> None:
    tenant = envs.tenant()
    with envs.sole_operator(operator, operator_env, local / "operator-quota.log",
                            SPARE_OPERATOR_HEALTH_PORT, WPENV_USER_POOL_QUOTA=str(in_use)):
        envs.apply(platform, namespace, "full", tenantId=tenant)
        obj = envs.wait_for(
            platform, namespace, "full",
            lambda o: envs.condition(o, "Ready").get("reason") == reasons.USER_POOL_QUOTA_REACHED,
            what="the quota to hold the environment")
        time.sleep(5)  # it keeps waiting: no Failed, no rollback, no pool
        obj = envs.get(platform, namespace, "full")
        assert envs.phase(obj) != "Failed"
        ready = envs.condition(obj, "Ready")
        assert ready["status"] == "False"
        assert f"{in_use} of quota {in_use} user pools in use" in ready["message"], ready
        assert envs.condition(obj, "Identity").get("reason") == reasons.USER_POOL_QUOTA_REACHED
        assert "userPoolId" not in (obj["status"].get("resources") or {})
        assert envs.tagged_resources(namespace, "full") == []
    # Deleted under the session's operator: one paused while an object came and went would
    # act on the stale events when it resumes (and make what nobody deletes).
    kube.kubectl("delete", "wpenv", "full", "-n", namespace, "--wait=true",
                 "--timeout=300s", env=platform, timeout=310)
    assert scanned_for(platform, tenant) == []
