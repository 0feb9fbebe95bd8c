"""The tenant's EFS access point against moto: lifecycle, restart safety, immutability."""

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


def test_lifecycle(ctx: Context, make_ctx: MakeCtx) -> None:
    resource = AccessPoint(chown=False)
    assert not resource.observe(ctx).exists
    assert not tenant_directory(ctx).exists()

    resource.create(ctx, resource.observe(ctx))
    ap_id, ap_arn = ctx.ids["accessPointId"], ctx.ids["accessPointArn"]
    assert ap_arn.endswith(f"access-point/{ap_id}")
    observed = resource.observe(ctx)
    assert observed.exists and observed.up_to_date and observed.ready
    assert observed.ids == {"accessPointId": ap_id, "accessPointArn": ap_arn}
    (found,) = observed.found
    assert found["RootDirectory"]["Path"] == f"/tenants/{ctx.names.tenant}"

    described = ctx.clients.efs.describe_access_points(AccessPointId=ap_id)["AccessPoints"][0]
    wanted = desired_access_point(ctx)
    assert described["FileSystemId"] == ctx.settings.file_system_id
    assert described["PosixUser"] == wanted["PosixUser"]
    assert described["RootDirectory"]["Path"] == wanted["RootDirectory"]["Path"]
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert tags == {**ctx.tags, "Name": ctx.names.access_point}

    directory = tenant_directory(ctx)
    assert directory == ctx.settings.efs_mount_path / "tenants" / ctx.names.tenant
    assert directory.is_dir() and stat.S_IMODE(directory.stat().st_mode) == 0o750

    resource.create(ctx, resource.observe(ctx))  # moto would make a second one: we adopt
    assert _count(ctx) == 1

    fresh = make_ctx(tenant=ctx.names.tenant)  # a restarted operator with a lost status
    assert fresh.ids == {}
    again = resource.observe(fresh)
    assert again.exists and again.up_to_date and again.ids == observed.ids
    resource.create(fresh, resource.observe(fresh))
    assert fresh.ids["accessPointId"] == ap_id and _count(ctx) == 1

    resource.ensure_absent(ctx)
    resource.ensure_absent(ctx)
    assert not resource.observe(ctx).exists
    assert not resource.observe(fresh).exists
    assert _count(ctx) == 0
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


def test_managed_lists_it_and_refresh_sees_it_gone(ctx: Context) -> None:
    resource = AccessPoint(chown=False)
    resource.create(ctx, resource.observe(ctx))
    ap_id = ctx.ids["accessPointId"]
    (item,) = [f for f in resource.managed(ctx.clients, ctx.settings) if f.id == ap_id]
    assert item.tags == {**ctx.tags, "Name": ctx.names.access_point}
    assert item.details["rootPath"] == f"/tenants/{ctx.names.tenant}"
    again = resource.refresh(ctx.clients, ctx.settings, item)
    assert again is not None and again.id == ap_id and again.tags == item.tags

    resource.remove_tolerant(ctx.clients, ctx.settings, item.found)  # the scan's shape
    assert resource.refresh(ctx.clients, ctx.settings, item) is None
    assert not resource.observe(ctx).exists
