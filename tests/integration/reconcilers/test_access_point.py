"""The tenant's EFS access point against moto: what create makes, immutability, duplicates."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest

from tests.integration.conftest import MakeCtx
from wpenv.errors import PermanentError
from wpenv.plan import TAG_TENANT
from wpenv.reconcilers.access_point import AccessPoint, desired_access_point, tenant_directory
from wpenv.reconcilers.base import Context

pytestmark = pytest.mark.e2e


def _count(ctx: Context) -> int:
    """Access points on the shared file system named for this tenant (moto: no paging)."""
    found = ctx.clients.efs.describe_access_points(FileSystemId=ctx.settings.file_system_id)
    return sum(
        1
        for ap in found["AccessPoints"]
        if {"Key": "Name", "Value": ctx.names.access_point} in ap.get("Tags", [])
    )


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant whose access points are removed whatever the test did."""
    context = make_ctx()
    yield context
    AccessPoint(chown=False).ensure_absent(context)


def test_create_makes_the_access_point_and_directory_the_plan_describes(ctx: Context) -> None:
    resource = AccessPoint(chown=False)
    assert not tenant_directory(ctx).exists()
    resource.create(ctx, resource.observe(ctx))
    ap_id, ap_arn = ctx.ids["accessPointId"], ctx.ids["accessPointArn"]
    assert ap_arn.endswith(f"access-point/{ap_id}")
    (found,) = resource.observe(ctx).found
    assert found["RootDirectory"]["Path"] == f"/tenants/{ctx.names.tenant}"

    described = ctx.clients.efs.describe_access_points(AccessPointId=ap_id)["AccessPoints"][0]
    wanted = desired_access_point(ctx)
    assert described["FileSystemId"] == ctx.settings.file_system_id
    assert described["PosixUser"] == wanted["PosixUser"]
    assert described["RootDirectory"]["Path"] == wanted["RootDirectory"]["Path"]
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert tags == {**ctx.tags, "Name": ctx.names.access_point}
    (item,) = [f for f in resource.managed(ctx.clients, ctx.settings) if f.id == ap_id]
    assert item.tags == tags and item.details["rootPath"] == f"/tenants/{ctx.names.tenant}"

    directory = tenant_directory(ctx)
    assert directory == ctx.settings.efs_mount_path / "tenants" / ctx.names.tenant
    assert directory.is_dir() and stat.S_IMODE(directory.stat().st_mode) == 0o750
    resource.ensure_absent(ctx)
    assert directory.is_dir()  # deprovisioning archives it; another module removes it


def test_moved_root_is_stale_and_update_refuses(ctx: Context) -> None:
    """An access point cannot change: a tenant's root never moves silently."""
    wanted = desired_access_point(ctx)
    moved = {**wanted, "RootDirectory": {"Path": "/tenants/somewhere-else"}}
    made = ctx.clients.efs.create_access_point(ClientToken="by-hand", **moved)
    resource = AccessPoint(chown=False)

    observed = resource.observe(ctx)
    assert observed.exists and not observed.up_to_date
    assert observed.ids["accessPointId"] == made["AccessPointId"]
    assert "RootDirectory.Path" in observed.detail
    with pytest.raises(PermanentError) as raised:
        resource.update(ctx, observed)
    assert raised.value.reason == "AccessPointImmutable"
    described = ctx.clients.efs.describe_access_points(AccessPointId=made["AccessPointId"])
    assert described["AccessPoints"][0]["RootDirectory"]["Path"] == "/tenants/somewhere-else"


def test_other_posix_user_is_stale_and_update_refuses(ctx: Context) -> None:
    resource = AccessPoint(chown=False)
    resource.create(ctx, resource.observe(ctx))
    ap_id = ctx.ids["accessPointId"]
    ctx.clients.efs.delete_access_point(AccessPointId=ap_id)
    root = {**desired_access_point(ctx), "PosixUser": {"Uid": 0, "Gid": 0}}
    ctx.clients.efs.create_access_point(ClientToken="root-by-hand", **root)

    observed = resource.observe(ctx)  # the recorded one is gone; found again by tags
    assert observed.exists and not observed.up_to_date
    assert "PosixUser.Uid" in observed.detail
    with pytest.raises(PermanentError):
        resource.update(ctx, observed)


def test_another_tenant_is_not_adopted(ctx: Context, make_ctx: MakeCtx) -> None:
    other = make_ctx()
    resource = AccessPoint(chown=False)
    resource.create(other, resource.observe(other))
    try:
        assert not resource.observe(ctx).exists
    finally:
        resource.ensure_absent(other)


def test_removed_tag_is_stale_and_update_restores_it(ctx: Context) -> None:
    resource = AccessPoint(chown=False)
    resource.create(ctx, resource.observe(ctx))
    ap_id = ctx.ids["accessPointId"]
    ctx.clients.efs.untag_resource(ResourceId=ap_id, TagKeys=[TAG_TENANT])

    observed = resource.observe(ctx)
    assert observed.exists and not observed.up_to_date
    resource.update(ctx, observed)
    assert resource.observe(ctx).up_to_date
    assert ctx.ids["accessPointId"] == ap_id


def test_missing_directory_is_stale_and_update_recreates_it(ctx: Context) -> None:
    resource = AccessPoint(chown=False)
    resource.create(ctx, resource.observe(ctx))
    directory = tenant_directory(ctx)
    directory.rmdir()

    observed = resource.observe(ctx)
    assert observed.exists and not observed.up_to_date and "directory" in observed.detail
    resource.update(ctx, observed)
    assert directory.is_dir() and resource.observe(ctx).up_to_date


def test_every_duplicate_is_found_and_removed(ctx: Context, make_ctx: MakeCtx) -> None:
    """Two access points of one environment (a crash before recording): both go."""
    resource = AccessPoint(chown=False)
    resource.create(ctx, resource.observe(ctx))
    ctx.clients.efs.create_access_point(ClientToken="dup-by-hand", **desired_access_point(ctx))
    assert _count(ctx) == 2

    observed = resource.observe(ctx)  # by the recorded id: no listing on an idle pass
    assert [ap["AccessPointId"] for ap in observed.found] == [ctx.ids["accessPointId"]]
    lost = resource.observe(make_ctx(tenant=ctx.names.tenant))  # a lost status lists them
    assert len(lost.found) == 2
    resource.ensure_absent(ctx)  # delete looks for duplicates again
    assert _count(ctx) == 0 and tenant_directory(ctx).is_dir()
