"""The tenant's task definition family against moto: what create registers, revisions, cleanup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import MakeCtx
from wpenv.errors import TransientError
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.task_definition import BASE_CONFIG, TaskDefinition, desired_task_definition

pytestmark = pytest.mark.e2e

# Ids the roles, log group, secret, access point and (identity is on by default) Cognito
# modules would record; moto does not check them.
FAKE_IDS = {
    "taskRoleArn": "arn:aws:iam::123456789012:role/wpenv-it-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/wpenv-it-exec",
    "logGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:/wpenv/it",
    "dbSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:wpenv/it/database-Ab12Cd",
    "siteSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:wpenv/it/wordpress-Gh56",
    "accessPointId": "fsap-0123456789abcdef0",
    "userPoolId": "us-east-1_AbCdEf123",
    "userPoolClientId": "1example23456789",
    "userPoolDomain": "wpenv-it-0123abcd",
    "clientSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:wpenv/it/oidc-Ef34",
}


def _arns(ctx: Context, status: str = "ACTIVE") -> list[str]:
    found = ctx.clients.ecs.list_task_definitions(
        familyPrefix=ctx.names.task_family, status=status
    )["taskDefinitionArns"]
    return [str(arn) for arn in found]


def _with(make_ctx: MakeCtx, ctx: Context, **spec: Any) -> Context:
    """The same tenant with another spec, carrying what was recorded so far."""
    other = make_ctx(tenant=ctx.names.tenant, **spec)
    other.ids.update(ctx.ids)
    return other


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant with its dependencies' ids; its family is removed afterwards."""
    context = make_ctx()
    context.ids.update(FAKE_IDS)
    yield context
    TaskDefinition().ensure_absent(context)


def test_create_registers_the_revision_the_plan_describes(ctx: Context) -> None:
    resource = TaskDefinition()
    resource.create(ctx, MISSING)
    arn = ctx.ids["taskDefinitionArn"]
    observed = resource.observe(ctx)
    assert observed.found.current["revision"] == 1
    assert observed.found.revisions == observed.found.active == (arn,)

    found = ctx.clients.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    revision = found["taskDefinition"]
    container = revision["containerDefinitions"][0]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert secrets["WORDPRESS_DB_PASSWORD"] == f"{FAKE_IDS['dbSecretArn']}:password::"
    assert secrets["OIDC_CLIENT_SECRET"] == f"{FAKE_IDS['clientSecretArn']}:client_secret::"
    efs = revision["volumes"][0]["efsVolumeConfiguration"]
    assert efs["authorizationConfig"] == {"accessPointId": FAKE_IDS["accessPointId"],
                                          "iam": "ENABLED"}
    assert efs["transitEncryption"] == "ENABLED"
    assert (revision["cpu"], revision["memory"]) == ("512", "1024")
    assert {t["key"]: t["value"] for t in found["tags"]} == ctx.tags

    resource.create(ctx, resource.observe(ctx))  # the newest matches: nothing registered
    resource.update(ctx, resource.observe(ctx))
    assert _arns(ctx) == [arn]
    resource.ensure_absent(ctx)
    assert _arns(ctx) == [] and _arns(ctx, "INACTIVE") == []  # moto has DeleteTaskDefinitions


def test_a_lost_status_waits_for_the_dependencies_and_registers_nothing(
    ctx: Context, make_ctx: MakeCtx
) -> None:
    resource = TaskDefinition()
    resource.create(ctx, MISSING)
    arn = ctx.ids["taskDefinitionArn"]
    fresh = make_ctx(tenant=ctx.names.tenant)  # a restarted operator with a lost status
    again = resource.observe(fresh)
    assert again.exists and again.ids == {"taskDefinitionArn": arn}
    assert not again.up_to_date  # it cannot compare without the dependencies' ids
    with pytest.raises(TransientError) as waiting:
        resource.create(fresh, again)
    assert waiting.value.reason == "WaitingForDependencies"
    fresh.ids.update(FAKE_IDS)
    assert resource.observe(fresh).up_to_date
    resource.create(fresh, resource.observe(fresh))
    assert fresh.ids["taskDefinitionArn"] == arn and _arns(ctx) == [arn]


def test_changes_register_new_revisions(ctx: Context, make_ctx: MakeCtx) -> None:
    resource = TaskDefinition()
    resource.create(ctx, resource.observe(ctx))
    first = ctx.ids["taskDefinitionArn"]

    newer = _with(make_ctx, ctx, image="wordpress:6.9-apache")
    observed = resource.observe(newer)
    assert observed.exists and not observed.up_to_date and "containerDefinitions" in observed.detail
    resource.update(newer, observed)
    second = newer.ids["taskDefinitionArn"]
    assert second != first
    after = resource.observe(newer)
    assert after.up_to_date and after.ids == {"taskDefinitionArn": second}
    current = after.found.current
    assert current["revision"] == 2
    assert current["containerDefinitions"][0]["image"] == "wordpress:6.9-apache"

    bigger = _with(make_ctx, newer, image="wordpress:6.9-apache", cpu=1024, memory=2048)
    observed = resource.observe(bigger)
    assert not observed.up_to_date and "cpu, memory" in observed.detail
    resource.update(bigger, observed)
    third = bigger.ids["taskDefinitionArn"]
    revision = ctx.clients.ecs.describe_task_definition(taskDefinition=third)["taskDefinition"]
    assert (revision["revision"], revision["cpu"], revision["memory"]) == (3, "1024", "2048")
    assert desired_task_definition(bigger)["cpu"] == "1024"

    resource.update(bigger, resource.observe(bigger))  # no change: no new revision
    resource.create(bigger, resource.observe(bigger))
    assert len(_arns(ctx)) == 3 and resource.observe(bigger).ids == {"taskDefinitionArn": third}

    resource.ensure_absent(ctx)  # every revision, not only the recorded one
    assert _arns(ctx) == [] and not resource.observe(ctx).exists


def test_switching_identity_off_drops_the_sso_settings(ctx: Context, make_ctx: MakeCtx) -> None:
    resource = TaskDefinition()
    resource.create(ctx, resource.observe(ctx))
    off = _with(make_ctx, ctx, identity={"enabled": False})
    observed = resource.observe(off)
    assert not observed.up_to_date and "containerDefinitions" in observed.detail
    resource.update(off, observed)
    revision = ctx.clients.ecs.describe_task_definition(
        taskDefinition=off.ids["taskDefinitionArn"]
    )["taskDefinition"]
    (container,) = revision["containerDefinitions"]
    names = [e["name"] for e in container["environment"] + container["secrets"]]
    assert not [n for n in names if "OIDC" in n]
    extra = [e["value"] for e in container["environment"] if e["name"] == "WORDPRESS_CONFIG_EXTRA"]
    assert extra == [BASE_CONFIG], "only the database's TLS and the site URL are left"
    assert resource.observe(off).up_to_date


def test_the_listing_names_every_revision_and_cleanup_removes_them_all(
    ctx: Context, make_ctx: MakeCtx
) -> None:
    resource = TaskDefinition()
    resource.create(ctx, resource.observe(ctx))
    newer = _with(make_ctx, ctx, image="wordpress:6.9-apache")
    resource.update(newer, resource.observe(newer))
    arns = sorted(_arns(ctx))
    assert len(arns) == 2

    (item,) = [
        f for f in resource.managed(ctx.clients, ctx.settings) if f.id == ctx.names.task_family
    ]
    assert item.tags == ctx.tags and item.details["revisions"] == arns
    assert item.found.revisions == tuple(arns) and item.found.active is None
    again = resource.refresh(ctx.clients, ctx.settings, item)
    assert again is not None and sorted(again.found.active) == arns

    resource.remove_tolerant(ctx.clients, ctx.settings, again.found)  # the scan's shape
    assert _arns(ctx) == [] and _arns(ctx, "INACTIVE") == []
