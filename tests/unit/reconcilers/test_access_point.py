"""The access point's desired document, drift checks and tenant directory, without AWS."""

from __future__ import annotations

import stat
from pathlib import Path

from wpenv.engine import make_context
from wpenv.plan import TAG_ENVIRONMENT
from wpenv.reconcilers import access_point as ap
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings


def _ctx(tenant: str = "acme", mount: Path = Path("/mnt/efs")) -> Context:
    settings = Settings(file_system_id="fs-123", efs_mount_path=mount, load_balancer_arns=[])
    return make_context("ns", tenant, {"tenantId": tenant}, settings=settings, clients=None)


def _echo(ctx: Context) -> dict[str, object]:
    """What DescribeAccessPoints answers for the access point we asked for."""
    doc = ap.desired_access_point(ctx)
    return {**doc, "AccessPointId": "fsap-1", "LifeCycleState": "available", "OwnerId": "1"}


def test_desired_access_point_pins_root_and_posix_user() -> None:
    ctx = _ctx()
    doc = ap.desired_access_point(ctx)
    uid = ctx.names.posix_uid
    assert doc["FileSystemId"] == "fs-123"
    assert doc["PosixUser"] == {"Uid": uid, "Gid": uid}
    assert doc["RootDirectory"] == {
        "Path": "/tenants/acme",
        "CreationInfo": {"OwnerUid": uid, "OwnerGid": uid, "Permissions": "0750"},
    }
    tags = {t["Key"]: t["Value"] for t in doc["Tags"]}
    assert tags["Name"] == ctx.names.access_point == "wpenv-acme"
    assert tags[TAG_ENVIRONMENT] == "ns.acme"
    assert "ClientToken" not in doc


def test_two_tenants_get_different_roots_and_users() -> None:
    one, two = ap.desired_access_point(_ctx("acme")), ap.desired_access_point(_ctx("globex"))
    assert one["RootDirectory"]["Path"] != two["RootDirectory"]["Path"]
    assert one["PosixUser"]["Uid"] != two["PosixUser"]["Uid"]


def test_echoed_access_point_has_no_drift() -> None:
    ctx = _ctx()
    assert ap.immutable_drift(ctx, _echo(ctx)) == ""
    assert ap.missing_tags(ctx, _echo(ctx)) == {}


def test_moved_root_or_other_user_is_immutable_drift() -> None:
    ctx = _ctx()
    moved = {**_echo(ctx), "RootDirectory": {"Path": "/tenants/other"}}
    assert "RootDirectory.Path" in ap.immutable_drift(ctx, moved)
    other_user = {**_echo(ctx), "PosixUser": {"Uid": 0, "Gid": 0}}
    assert "PosixUser.Uid" in ap.immutable_drift(ctx, other_user)


def test_missing_tag_is_reported() -> None:
    ctx = _ctx()
    echoed = {**_echo(ctx), "Tags": [{"Key": "Name", "Value": "wpenv-acme"}]}
    assert set(ap.missing_tags(ctx, echoed)) == set(ctx.tags)


def test_tenant_directory_is_created_with_mode_0750(tmp_path: Path) -> None:
    ctx = _ctx(mount=tmp_path)
    path = ap.AccessPoint(chown=False).ensure_directory(ctx)
    assert path == tmp_path / "tenants" / "acme" == ap.tenant_directory(ctx)
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    (path / "kept.txt").write_text("x")
    ap.AccessPoint(chown=False).ensure_directory(ctx)  # idempotent, leaves content alone
    assert (path / "kept.txt").read_text() == "x"


def test_declarations() -> None:
    resource = ap.AccessPoint(chown=False)
    assert resource.ids == ("accessPointId", "accessPointArn")
    assert resource.gone == {"AccessPointNotFound"}
    assert resource.archive == "files" and resource.retainable and resource.needs == ()
