"""The tenant's EFS access point: its only way into the shared file system.

The access point pins every mount of the tenant's tasks to `/tenants/<tenant>` as the
tenant's own POSIX user, so one tenant cannot see another's files. It cannot be modified
in AWS; a root path or POSIX user that differs from the plan is reported and refused
(`AccessPointImmutable`), never fixed by re-creating it: a tenant's root directory must not
move silently. Neither AWS (client tokens only guard one request) nor moto (never) adopts
an existing access point on create, so it is looked up by recorded id, then by tags.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, plan
from wpenv.plan import TAG_ENVIRONMENT
from wpenv.reconcilers.base import MISSING, Context, Observation, PermanentError, tag_diff

log = logging.getLogger(__name__)

NOT_FOUND = "AccessPointNotFound"
IMMUTABLE = "AccessPointImmutable"
GONE_STATES = ("deleting", "deleted")
DIRECTORY_MODE = 0o750
PERMISSIONS = "0750"

IMMUTABLE_DRIFT = (
    "access point {id} has {field}={actual!r}, the plan wants {wanted!r}; an access point "
    "cannot be changed: move the tenant's files and replace it by hand"
)
STALE_TAGS = "access point {id} lacks tags {keys}"
NO_DIRECTORY = "the tenant's directory {path} is missing"


def desired_access_point(ctx: Context) -> dict[str, Any]:
    """The `CreateAccessPoint` arguments for this tenant, without a client token (no I/O)."""
    uid = ctx.names.posix_uid
    return {
        "FileSystemId": ctx.settings.file_system_id,
        "PosixUser": {"Uid": uid, "Gid": uid},
        "RootDirectory": {
            "Path": ctx.names.access_point_root,
            "CreationInfo": {"OwnerUid": uid, "OwnerGid": uid, "Permissions": PERMISSIONS},
        },
        "Tags": [*ctx.tag_list, {"Key": "Name", "Value": ctx.names.access_point}],
    }


def tenant_directory(ctx: Context) -> Path:
    """Where the operator sees the tenant's root directory: `<mount>/tenants/<tenant>`."""
    return plan.tenant_directory(ctx.settings, ctx.names.tenant)


def immutable_drift(ctx: Context, observed: dict[str, Any]) -> str:
    """A note when the root path or POSIX user differs from the plan (empty: as planned)."""
    wanted = desired_access_point(ctx)
    root = observed.get("RootDirectory") or {}
    posix = observed.get("PosixUser") or {}
    checks: list[tuple[str, Any, Any]] = [
        ("RootDirectory.Path", root.get("Path"), wanted["RootDirectory"]["Path"]),
        ("PosixUser.Uid", posix.get("Uid"), wanted["PosixUser"]["Uid"]),
        ("PosixUser.Gid", posix.get("Gid"), wanted["PosixUser"]["Gid"]),
    ]
    for field, actual, want in checks:
        if actual != want:
            return IMMUTABLE_DRIFT.format(
                id=observed.get("AccessPointId"), field=field, actual=actual, wanted=want
            )
    return ""


def missing_tags(ctx: Context, observed: dict[str, Any]) -> dict[str, str]:
    """Our tags (and Name) the access point lacks or carries with another value."""
    wanted = {t["Key"]: t["Value"] for t in desired_access_point(ctx)["Tags"]}
    return tag_diff(wanted, observed)


def _is_ours(ctx: Context, access_point: dict[str, Any]) -> bool:
    """Our environment tag and Name tag, on the shared file system, not being deleted."""
    tags = {t["Key"]: t.get("Value") for t in access_point.get("Tags") or []}
    return (
        access_point.get("FileSystemId") == ctx.settings.file_system_id
        and access_point.get("LifeCycleState") not in GONE_STATES
        and tags.get(TAG_ENVIRONMENT) == ctx.tags[TAG_ENVIRONMENT]
        and tags.get("Name") == ctx.names.access_point
    )


def find_access_points(ctx: Context) -> list[dict[str, Any]]:
    """Every access point of this environment: the recorded one first, then by tags."""
    efs = ctx.clients.efs
    found: list[dict[str, Any]] = []
    recorded = ctx.ids.get("accessPointId")
    if recorded:
        try:
            found = efs.describe_access_points(AccessPointId=recorded)["AccessPoints"]
        except ClientError as exc:
            if not aws.is_not_found(exc, NOT_FOUND):
                raise
        found = [ap for ap in found if ap.get("LifeCycleState") not in GONE_STATES]
    seen = {ap["AccessPointId"] for ap in found}
    kwargs: dict[str, Any] = {"FileSystemId": ctx.settings.file_system_id}
    while True:
        page = efs.describe_access_points(**kwargs)
        for ap in page.get("AccessPoints", []):
            if ap["AccessPointId"] not in seen and _is_ours(ctx, ap):
                found.append(ap)
                seen.add(ap["AccessPointId"])
        token = page.get("NextToken")
        if not token:
            return [dict(ap) for ap in found]
        kwargs["NextToken"] = token


def _ids(access_point: dict[str, Any]) -> dict[str, str]:
    return {
        "accessPointId": str(access_point["AccessPointId"]),
        "accessPointArn": str(access_point["AccessPointArn"]),
    }


class AccessPoint:
    """EFS access point of one tenant (condition group "Storage")."""

    kind = "AccessPoint"
    group = "Storage"

    def __init__(self, chown: bool | None = None) -> None:
        """`chown`: give the tenant's directory to its POSIX user (default: when root).

        Only root may chown; locally the operator is a plain user and the owner does not
        matter, in production it mounts EFS as root and the tasks must be able to write.
        """
        self._chown = os.geteuid() == 0 if chown is None else chown

    def observe(self, ctx: Context) -> Observation:
        """Find it; stale when root, POSIX user or our tags differ, or the directory is gone."""
        found = find_access_points(ctx)
        if not found:
            return MISSING
        ap = found[0]
        drift = immutable_drift(ctx, ap)
        tags = missing_tags(ctx, ap)
        directory = tenant_directory(ctx)
        has_directory = directory.is_dir()
        detail = drift
        if not detail and tags:
            detail = STALE_TAGS.format(id=ap["AccessPointId"], keys=sorted(tags))
        if not detail and not has_directory:
            detail = NO_DIRECTORY.format(path=directory)
        return Observation(
            exists=True,
            up_to_date=not drift and not tags and has_directory,
            ids=_ids(ap),
            ready=ap.get("LifeCycleState", "available") == "available",
            detail=detail,
            facts={
                "fileSystemId": ap.get("FileSystemId"),
                "rootPath": (ap.get("RootDirectory") or {}).get("Path"),
                "posixUid": (ap.get("PosixUser") or {}).get("Uid"),
                "lifeCycleState": ap.get("LifeCycleState"),
                "duplicates": len(found) - 1,
            },
        )

    def create(self, ctx: Context) -> None:
        """Create (or adopt) the access point, record it, then make the tenant's directory."""
        found = find_access_points(ctx)
        if found:
            ap = found[0]
            log.info("adopting access point %s for %s", ap["AccessPointId"], ctx.names.tenant)
        else:
            # A fresh token per call: the lookup above is what makes create idempotent; a
            # deterministic token could collide with an access point deleted earlier.
            ap = ctx.clients.efs.create_access_point(
                ClientToken=str(uuid.uuid4()), **desired_access_point(ctx)
            )
            log.info("created access point %s for %s", ap["AccessPointId"], ctx.names.tenant)
        ctx.remember(_ids(ap))
        self.ensure_directory(ctx)

    def ensure_directory(self, ctx: Context) -> Path:
        """Make `<mount>/tenants/<tenant>` exist with mode 0750 (the operator archives it).

        On EFS the access point would create it on first mount, but only then; the
        deprovisioner reads this path even if no task ever ran.
        """
        path = tenant_directory(ctx)
        path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        path.chmod(DIRECTORY_MODE)  # mkdir's mode is filtered by the umask
        if self._chown:
            uid = ctx.names.posix_uid
            stat = path.stat()
            if (stat.st_uid, stat.st_gid) != (uid, uid):
                os.chown(path, uid, uid)
        return path

    def update(self, ctx: Context, observed: Observation) -> None:
        """Restore tags and the directory; a different root or POSIX user is permanent."""
        found = find_access_points(ctx)
        if not found:
            return
        ap = found[0]
        drift = immutable_drift(ctx, ap)
        if drift:
            raise PermanentError(IMMUTABLE, drift)
        tags = missing_tags(ctx, ap)
        if tags:
            ctx.clients.efs.tag_resource(
                ResourceId=ap["AccessPointId"],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        ctx.remember(_ids(ap))
        self.ensure_directory(ctx)

    def delete(self, ctx: Context) -> None:
        """Delete every access point of this environment; the directory stays (archived)."""
        for ap in find_access_points(ctx):
            try:
                ctx.clients.efs.delete_access_point(AccessPointId=ap["AccessPointId"])
            except ClientError as exc:
                if not aws.is_not_found(exc, NOT_FOUND):
                    raise
            log.info("deleted access point %s of %s", ap["AccessPointId"], ctx.names.tenant)
