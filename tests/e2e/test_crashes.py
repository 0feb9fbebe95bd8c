"""Crashes (issue 14): the operator killed at every step boundary, and at random moments.

One environment walks through every kill point the registry gives (wpenv.crashpoints): an
operator armed with the first point provisions until it dies there, the next one is armed
with the next point, and so on until Active; then one deletion walks through every
deprovisioning point the same way, the dump and the files upload cut in the middle. After
each walk: exactly one of each resource, nothing orphaned (the orphan scan, by tag and by
MySQL name), nothing lost (the archive restores into a fresh tenant with equal checksums).
The random test kills an operator at moments drawn from a printed seed
(WPENV_CRASH_SEED=<seed> replays it).

The session's operator is paused (SIGSTOP) for each test, as a frozen node would be; on
resuming it works through the events it missed, of objects that are gone by then, and
must make nothing for them (`_nothing_made_on_resuming`).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import SPARE_OPERATOR_HEALTH_PORT
from tests.e2e import data, envs
from tests.e2e.victims import Victims, paused, waited
from tests.kubeapi import api_for
from tests.platform import controlplane, kube, mariadb
from wpenv import crashpoints
from wpenv.aws import Clients
from wpenv.orphans import scan
from wpenv.plan import names_for
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import Resource
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e

PROVISIONING = crashpoints.provisioning(registry.KINDS)
DEPROVISIONING = crashpoints.deprovisioning(registry.KINDS)
# Every kind switched on: identity is on by default, the scaler needs bounds.
SPEC: dict[str, Any] = {"autoscaling": {"minReplicas": 2, "maxReplicas": 3}}
# The scan lists these kinds itself; the Cognito pieces inside a pool and the scaler are
# counted directly (`_one_of_each`).
LISTED = [k for k in registry.KINDS if type(k).managed is not Resource.managed]
BIG_FILE = "a-first-and-large.bin"  # walked first; larger than one upload part
BIG_FILE_BYTES = 9 * 1024 * 1024
# How long the resumed session operator is watched working through what it missed.
RESUMED_SECONDS = 20.0


@pytest.fixture
def victims(operator_env: dict[str, str], local: Path, namespace: str) -> Victims:
    """Operators for this test's namespace, with the install's own account (WPENV_NAMESPACES
    needs no right more); their log is kept for a failed run."""
    return Victims(operator_env, namespace, local / f"victims-{namespace}.log",
                   SPARE_OPERATOR_HEALTH_PORT)


def _census(platform: dict[str, str], tenant: str) -> tuple[Counter[str], list[str]]:
    """The orphan scan's view of one tenant: owned resources by kind, and orphans."""
    settings = Settings()
    result = scan(settings, Clients(settings), api_for(platform["KUBECONFIG"]))
    assert not result.errors, result.errors
    owned = Counter(item.kind for item in result.owned if item.tenant == tenant)
    return owned, [f"{i.kind} {i.id}" for i in result.orphans if i.tenant == tenant]


def _one_of_each(platform: dict[str, str], namespace: str, name: str, tenant: str) -> None:
    """Exactly one of every kind of the registry, and nothing orphaned."""
    owned, orphans = _census(platform, tenant)
    assert orphans == []
    assert owned == Counter({k.kind: 1 for k in LISTED}), owned
    ids = envs.get(platform, namespace, name)["status"]["resources"]
    names = names_for(namespace, name, tenant)
    cognito = boto3.client("cognito-idp")
    pools = [p for p in cognito.list_user_pools(MaxResults=60)["UserPools"]
             if p["Name"] == names.user_pool]
    assert [p["Id"] for p in pools] == [ids["userPoolId"]]
    clients = cognito.list_user_pool_clients(UserPoolId=ids["userPoolId"])["UserPoolClients"]
    assert [c["ClientId"] for c in clients] == [ids["userPoolClientId"]]
    groups = cognito.list_groups(UserPoolId=ids["userPoolId"])["Groups"]
    assert sorted(g["GroupName"] for g in groups) == ["Admin", "Editor", "Viewer"]
    scaling = boto3.client("application-autoscaling")
    resource = f"service/{os.environ['WPENV_CLUSTER_NAME']}/{names.service}"
    targets = scaling.describe_scalable_targets(ServiceNamespace="ecs",
                                                ResourceIds=[resource])["ScalableTargets"]
    policies = scaling.describe_scaling_policies(ServiceNamespace="ecs",
                                                 ResourceId=resource)["ScalingPolicies"]
    assert (len(targets), len(policies)) == (1, 1)
    families = boto3.client("ecs").list_task_definitions(
        familyPrefix=names.task_family, status="ACTIVE")
    assert len(families["taskDefinitionArns"]) == 1, "one revision: no duplicate registration"
    kinds = sorted(envs.arn_kind(arn) for arn in envs.tagged_resources(namespace, name, ecs=True))
    assert len(kinds) == len(set(kinds)), f"duplicates: {kinds}"


def _fill(platform: dict[str, str], namespace: str, name: str, tenant: str) -> data.Restored:
    """Tables, files (the first one larger than an upload part) and a user: what must
    survive the deletion."""
    obj = envs.get(platform, namespace, name)
    tables = data.write_rows(obj)
    data.write_files(tenant)
    (data.tenant_root(tenant) / BIG_FILE).write_bytes(os.urandom(BIG_FILE_BYTES))
    pool = obj["status"]["resources"]["userPoolId"]
    boto3.client("cognito-idp").admin_create_user(
        UserPoolId=pool, Username="ann@example.com",
        UserAttributes=[{"Name": "email", "Value": "ann@example.com"}])
    users = [u["Username"] for u in
             boto3.client("cognito-idp").list_users(UserPoolId=pool)["Users"]]
    return data.Restored(tables, data.file_digests(data.tenant_root(tenant)), users)


def _nothing_left_but_the_archive(
    platform: dict[str, str], namespace: str, name: str, tenant: str, kept: data.Restored
) -> None:
    """No resource, database, user or directory of the tenant; one archive holding it all."""
    owned, orphans = _census(platform, tenant)
    assert (owned, orphans) == (Counter(), [])
    assert envs.tagged_resources(namespace, name) == []
    assert not data.tenant_root(tenant).exists()
    archives = data.archives(namespace, name)
    assert [a.complete for a in archives] == [True], "every attempt resumed one archive"
    restored = data.restore_elsewhere(namespace, archives[0].uri)
    assert restored.tables == kept.tables
    assert restored.files == kept.files
    assert restored.users == sorted(kept.users)


def _nothing_made_on_resuming(platform: dict[str, str], namespace: str, name: str,
                              tenant: str) -> None:
    """The session's operator, resumed, works through the events it missed of an object
    that is gone by now: it must make nothing (no user pool, no access point)."""
    time.sleep(RESUMED_SECONDS)
    owned, orphans = _census(platform, tenant)
    assert (owned, orphans) == (Counter(), [])
    pool = names_for(namespace, name, tenant).user_pool
    pools = boto3.client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]
    assert [p["Id"] for p in pools if p["Name"] == pool] == []


def _incomplete_uploads(namespace: str, name: str) -> list[str]:
    """Keys of the multipart uploads under the environment's archives not completed."""
    settings = Settings()
    answer = boto3.client("s3").list_multipart_uploads(
        Bucket=settings.archive_bucket, Prefix=f"{settings.archive_prefix}/{namespace}/{name}/")
    return [u["Key"].rpartition("/")[2] for u in answer.get("Uploads", [])]


def test_a_kill_at_every_step_boundary_converges_and_loses_nothing(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str,
    victims: Victims,
) -> None:
    tenant, name = envs.tenant(), "walk"
    started = time.monotonic()
    with paused(operator):
        envs.apply(platform, namespace, name, tenantId=tenant, **SPEC)
        for point in PROVISIONING:
            victims.kill_at(point)
        with victims.running():
            envs.wait_ready(platform, namespace, name)
        _one_of_each(platform, namespace, name, tenant)
        provisioned = time.monotonic()

        kept = _fill(platform, namespace, name, tenant)
        kube.kubectl("delete", "wpenv", name, "-n", namespace, "--wait=false", env=platform)
        for point in DEPROVISIONING:
            victims.kill_at(point)
            if point == f"{crashpoints.DUMP}:{crashpoints.MIDDLE}":
                with data.master() as conn, conn.cursor() as cur:
                    database = names_for(namespace, name, tenant).database
                    assert data.checks(cur, database) == kept.tables, "nothing dropped"
                assert not list(victims.tmp.glob("wpenv-*")), "no password left on disk"
            if point == f"{crashpoints.UPLOAD}:{crashpoints.MIDDLE}":
                assert _incomplete_uploads(namespace, name) == ["files.tar.gz"], "mid-upload"
        with victims.running():
            data.gone(platform, namespace, name)
        _nothing_left_but_the_archive(platform, namespace, name, tenant, kept)
    _nothing_made_on_resuming(platform, namespace, name, tenant)

    reached = victims.reached()
    # Every boundary the registry has, each reached once, in the order a walk meets them.
    assert reached == PROVISIONING + DEPROVISIONING
    # The cut upload's parts stay until the bucket's AbortIncompleteMultipartUpload rule.
    assert _incomplete_uploads(namespace, name) == ["files.tar.gz"]
    print(f"\nkill points covered: {len(reached)} ({len(PROVISIONING)} provisioning, "
          f"{len(DEPROVISIONING)} deprovisioning) for {len(registry.KINDS)} kinds; "
          f"provisioning walk {provisioned - started:.0f}s, "
          f"deprovisioning walk {time.monotonic() - provisioned:.0f}s")


def test_kills_at_random_moments_converge_and_lose_nothing(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str,
    victims: Victims,
) -> None:
    seed = int(os.environ.get("WPENV_CRASH_SEED") or time.time_ns() % 1_000_000)
    print(f"\nrandom kills: WPENV_CRASH_SEED={seed}")
    rng = random.Random(seed)
    tenant, name = envs.tenant(), "random"
    with paused(operator):
        envs.apply(platform, namespace, name, tenantId=tenant, **SPEC)
        for _ in range(3):
            victims.kill_after(rng.uniform(1.5, 5.0))
        with victims.running():
            envs.wait_ready(platform, namespace, name)
        _one_of_each(platform, namespace, name, tenant)

        kept = _fill(platform, namespace, name, tenant)
        kube.kubectl("delete", "wpenv", name, "-n", namespace, "--wait=false", env=platform)
        for _ in range(3):
            victims.kill_after(rng.uniform(1.5, 5.0))
        with victims.running():
            data.gone(platform, namespace, name)
        _nothing_left_but_the_archive(platform, namespace, name, tenant, kept)
    _nothing_made_on_resuming(platform, namespace, name, tenant)


# The smaller spec of the outage tests: no Cognito pieces, no scaler.
PLAIN: dict[str, Any] = {"identity": {"enabled": False}}
# The kind whose step comes right before the database's, the first that needs MySQL.
BEFORE_DATABASE = registry.KINDS[[k.kind for k in registry.KINDS].index("Database") - 1].kind


def _some(platform: dict[str, str], namespace: str, name: str, key: str) -> None:
    """Wait until the status records `key` (a resource id), i.e. provisioning is under way."""
    envs.wait_for(platform, namespace, name,
                  lambda o: bool(((o.get("status") or {}).get("resources") or {}).get(key)),
                  what=f"{key} to be recorded")


def _archived_and_gone(platform: dict[str, str], namespace: str, name: str, tenant: str,
                       tables: dict[str, tuple[int, int]]) -> None:
    """Nothing of the tenant left; its one archive restores its tables with equal checks."""
    owned, orphans = _census(platform, tenant)
    assert (owned, orphans) == (Counter(), [])
    archives = data.archives(namespace, name)
    assert [a.complete for a in archives] == [True], archives
    assert data.restore_elsewhere(namespace, archives[0].uri).tables == tables


def test_the_api_server_restarting_mid_provision_and_mid_deprovision_converges(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str,
    victims: Victims, local: Path,
) -> None:
    tenant, name = envs.tenant(), "apiserver"
    with paused(operator), victims.running():
        envs.apply(platform, namespace, name, tenantId=tenant, **PLAIN)
        _some(platform, namespace, name, "securityGroupId")
        controlplane.restart_apiserver(local)
        envs.wait_ready(platform, namespace, name)
        tables = data.write_rows(envs.get(platform, namespace, name))

        kube.kubectl("delete", "wpenv", name, "-n", namespace, "--wait=false", env=platform)
        envs.wait_for(platform, namespace, name,
                      lambda o: not (o["status"].get("resources") or {}).get("serviceArn"),
                      what="the service to be removed")
        controlplane.restart_apiserver(local)
        data.gone(platform, namespace, name)
        _archived_and_gone(platform, namespace, name, tenant, tables)


def _dump_waits(database: str) -> bool:
    """Whether a connection to `database` waits for a table lock (the dump, mid-way)."""
    with data.master() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s "
                    "AND STATE LIKE 'Waiting for table%%lock'", (database,))
        (count,) = cur.fetchone()
    return bool(count)


def test_mariadb_stopping_mid_provision_and_mid_dump_drops_nothing_unarchived(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str,
    victims: Victims, local: Path,
) -> None:
    tenant, name = envs.tenant(), "mariadb"
    database = names_for(namespace, name, tenant).database
    with paused(operator):
        envs.apply(platform, namespace, name, tenantId=tenant, **PLAIN)
        victims.kill_at(f"{crashpoints.RECORDED}:{BEFORE_DATABASE}")
        mariadb.stop(local)
        try:
            with victims.running():
                envs.wait_for(platform, namespace, name, lambda o: envs.condition(
                    o, "Ready").get("reason") == "DatabaseUnreachable", what="DatabaseUnreachable")
        finally:
            mariadb.start(local)
        with victims.running():
            envs.wait_ready(platform, namespace, name)
            tables = data.write_rows(envs.get(platform, namespace, name))

            # The dump blocks on a table this connection holds, so it is mid-way for sure.
            lock = data.master()
            with lock.cursor() as cur:
                cur.execute(f"LOCK TABLES `{database}`.`wp_posts` WRITE")
            kube.kubectl("delete", "wpenv", name, "-n", namespace, "--wait=false", env=platform)
            try:
                waited(lambda: _dump_waits(database), 60, "the dump to start")
            finally:
                mariadb.stop(local)  # ends the lock with every connection
            try:
                failed = envs.wait_for(
                    platform, namespace, name,
                    lambda o: envs.condition(o, "Deprovision").get("reason") in (
                        "DatabaseDumpFailed", "DatabaseUnreachable"),
                    what="the failed dump")
            finally:
                mariadb.start(local)
            assert "nothing holding data was removed" in envs.condition(
                failed, "Deprovision")["message"]
            data.gone(platform, namespace, name)
        _archived_and_gone(platform, namespace, name, tenant, tables)
