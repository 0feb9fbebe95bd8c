"""The engine with the real resources against the local platform.

Failure injection uses our own Resource interface: a step that raises after the real
steps before it have created real resources in moto and MariaDB. Nothing of boto3 or
pymysql is replaced.
"""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
import pymysql
import pytest

from tests.integration.conftest import MakeCtx, aws_calls, roll_back_settled, settle, writes
from tests.integration.identity import domain_owner, our_pools
from wpenv import engine
from wpenv.errors import PermanentError
from wpenv.reconcilers.base import Context, Observation, Resource

pytestmark = pytest.mark.e2e
STEPS = len(engine.default_resources())


class Poison(Resource):
    """A step that always fails permanently, as a quota or validation error would."""

    group = "Storage"

    def observe(self, ctx: Context) -> Observation:
        return Observation(exists=False, up_to_date=False, ready=False)

    def create(self, ctx: Context, observed: Observation) -> None:
        raise PermanentError("InjectedFailure", "injected for the test")

    def update(self, ctx: Context, observed: Observation) -> None:
        raise AssertionError("never called")

    def delete(self, ctx: Context, observed: Observation) -> None:
        return None


def leftovers(ctx: Context) -> list[str]:
    """Everything still carrying the environment's tag, plus IAM, MySQL, ECS and Cognito.

    The emulator's tagging API does not cover Cognito: pools are found by name and tag.
    """
    env_tag = next(k for k in ctx.tags if k.endswith("/environment"))
    tagging = boto3.client("resourcegroupstaggingapi")
    # ECS keeps deleted services and deregistered task definitions (INACTIVE) with their
    # tags, as AWS does for a while; those are checked by status below instead.
    found = [
        m["ResourceARN"]
        for m in tagging.get_resources(
            TagFilters=[{"Key": env_tag, "Values": [ctx.tags[env_tag]]}]
        )["ResourceTagMappingList"]
        if ":ecs:" not in m["ResourceARN"]
    ]
    found += [
        r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]
        if r["RoleName"] == ctx.names.task_role
    ]
    services = boto3.client("ecs").describe_services(
        cluster=ctx.settings.cluster_name, services=[ctx.names.service]
    )["services"]
    found += [s["serviceArn"] for s in services if s["status"] == "ACTIVE"]
    defs = boto3.client("ecs").list_task_definitions(
        familyPrefix=ctx.names.task_family, status="ACTIVE")["taskDefinitionArns"]
    found += defs
    aps = boto3.client("efs").describe_access_points(
        FileSystemId=ctx.settings.file_system_id)["AccessPoints"]
    found += [a["AccessPointId"] for a in aps
              if any(t["Value"] == ctx.tags[env_tag] for t in a.get("Tags", []))]
    found += [f"pool:{p['Id']}" for p in our_pools(ctx)]
    found += [f"domain:{ctx.names.user_pool_domain}"] if domain_owner(ctx) else []
    conn = _master()
    with conn, conn.cursor() as cur:
        cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name=%s",
                    (ctx.names.database,))
        found += [row[0] for row in cur.fetchall()]
        cur.execute("SELECT user FROM mysql.user WHERE user=%s", (ctx.names.database_user,))
        found += [f"user:{row[0]}" for row in cur.fetchall()]
    return found


def _master() -> pymysql.connections.Connection[Any]:
    return pymysql.connect(host=os.environ["MYSQL_HOST"], port=int(os.environ["MYSQL_TCP_PORT"]),
                           user=os.environ["MYSQL_USER"], password=os.environ["MYSQL_PWD"])


def test_from_nothing_to_ready_then_an_idle_pass_changes_nothing(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    resources = engine.default_resources()
    outcome = engine.converge(ctx, resources)
    for _ in range(40):
        if outcome.ready or outcome.failure:
            break
        time.sleep(0.5)
        outcome = engine.converge(ctx, resources)
    assert outcome.failure is None
    assert outcome.ready, outcome.conditions
    with aws_calls(ctx.clients) as calls:
        idle = engine.converge(ctx, resources)  # what the drift check runs
    assert idle.ready
    assert idle.events == [], "an idle pass must not create or update anything"
    assert calls, "the pass did read"
    assert writes(calls) == [], f"an idle pass made writes: {writes(calls)}"
    assert roll_back_settled(ctx, resources)
    assert leftovers(ctx) == []


@pytest.mark.parametrize("step", range(STEPS))
def test_failure_at_each_step_rolls_back_everything(make_ctx: MakeCtx, step: int) -> None:
    ctx = make_ctx()
    resources: list[Any] = engine.default_resources()[:step]
    resources.append(Poison())
    outcome = settle(ctx, resources)
    assert outcome.failure is not None
    assert outcome.failure.reason == "InjectedFailure"
    assert leftovers(ctx) == []
    assert ctx.ids == {}


@pytest.mark.parametrize("step", range(1, STEPS))
def test_restart_after_each_step_creates_no_duplicates(make_ctx: MakeCtx, step: int) -> None:
    """A pass cut short after `step` resources, then a new pass that lost its status."""
    first = make_ctx()
    all_resources = engine.default_resources()
    settle(first, all_resources[:step])
    again = make_ctx(tenant=first.spec.tenant_id)  # empty ids: the status write was lost
    outcome = settle(again, engine.default_resources())
    assert outcome.failure is None
    assert again.ids == {**first.ids, **again.ids}, "found different resources"
    ecs = boto3.client("ecs")
    services = ecs.list_services(cluster=again.settings.cluster_name)["serviceArns"]
    assert sum(a.endswith(f"/{again.names.service}") for a in services) == 1
    tgs = boto3.client("elbv2").describe_target_groups()["TargetGroups"]
    assert sum(g["TargetGroupName"] == again.names.target_group for g in tgs) == 1
    aps = boto3.client("efs").describe_access_points(
        FileSystemId=again.settings.file_system_id)["AccessPoints"]
    assert sum(a["AccessPointId"] == again.ids["accessPointId"] for a in aps) == 1
    assert len([a for a in aps if a["RootDirectory"]["Path"] ==
                again.names.access_point_root]) == 1
    assert roll_back_settled(again, engine.default_resources())
    assert leftovers(again) == []
