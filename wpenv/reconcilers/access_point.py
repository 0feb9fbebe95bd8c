"""The tenant's EFS access point: its only way into the shared file system.

The access point pins every mount of the tenant's tasks to `/tenants/<tenant>` as the
tenant's own POSIX user, so one tenant cannot see another's files. It cannot be modified
in AWS; a root path or POSIX user that differs from the plan is reported and refused
(`AccessPointImmutable`), never fixed by re-creating it: a tenant's root directory must not
move silently. Neither AWS (client tokens only guard one request) nor moto (never) adopts
an existing access point on create, so it is looked up by recorded id, then by tags, and
create checks first unless its observation found one. Duplicates (made by hand, or by a
crash between create and record) are all found, and all deleted with the environment.

The tenant's directory below the access point holds the tenant's files: the kind makes it
but never removes it. Deleting is preceded by the "files" archive hook (`archive`), which
archives, verifies and then removes the directory.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, plan, reasons
from wpenv.errors import PermanentError
from wpenv.plan import TAG_ENVIRONMENT, TAG_MANAGED_BY, tag_dict, tag_diff, tag_list
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.settings import Settings

log = logging.getLogger(__name__)

NOT_FOUND = "AccessPointNotFound"
# A repeated CreateAccessPoint (same client token): the error names the one it made.
ALREADY_EXISTS = "AccessPointAlreadyExists"
GONE_STATES = ("deleting", "deleted")
DIRECTORY_MODE = 0o750
PERMISSIONS = "0750"

# The shared cache's listing: every access point of the shared file system, which one
# DescribeAccessPoints by FileSystemId pages through ("DescribeAccessPoints", EFS API).
LISTED = "efs:DescribeAccessPoints"

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
    tags = tag_dict(access_point.get("Tags"))
    return (
        access_point.get("FileSystemId") == ctx.settings.file_system_id
        and not _going(access_point)
        and tags.get(TAG_ENVIRONMENT) == ctx.tags[TAG_ENVIRONMENT]
        and tags.get("Name") == ctx.names.access_point
    )


def file_system_access_points(clients: Any, settings: Settings) -> dict[str, list[Any]]:
    """Access point id -> [it], for every access point of the shared file system that is
    not being deleted (the list shape observe finds)."""
    pages = clients.efs.get_paginator("describe_access_points").paginate(
        FileSystemId=settings.file_system_id
    )
    return {str(ap["AccessPointId"]): [dict(ap)]
            for page in pages for ap in page.get("AccessPoints", []) if not _going(ap)}


def _available(found: list[dict[str, Any]]) -> bool:
    return all(ap.get("LifeCycleState", "available") == "available" for ap in found)


def _going(access_point: dict[str, Any]) -> bool:
    return access_point.get("LifeCycleState") in GONE_STATES


def _ids(access_point: dict[str, Any]) -> dict[str, str]:
    return {
        "accessPointId": str(access_point["AccessPointId"]),
        "accessPointArn": str(access_point["AccessPointArn"]),
    }


class AccessPoint(
    Resource,
    group="Storage",
    ids=("accessPointId", "accessPointArn"),
    gone={NOT_FOUND},
    archive="files",
    retainable=True,
):
    """EFS access point of one tenant (condition group "Storage").

    What observe finds (`Observation.found`) is a list: every access point of this
    environment, the recorded one (or the oldest found) first; `remove` deletes them all.
    """

    def __init__(self, chown: bool | None = None) -> None:
        """`chown`: give the tenant's directory to its POSIX user (default: when root).

        Only root may chown; locally the operator is a plain user and the owner does not
        matter, in production it mounts EFS as root and the tasks must be able to write.
        """
        self._chown = os.geteuid() == 0 if chown is None else chown

    def find(self, ctx: Context) -> list[dict[str, Any]] | None:
        """The recorded access point; without one, every one of this environment by tags.

        Listing by tags reads the whole shared file system's access points, so an idle
        pass with a recorded id never does it; duplicates (a crash between create and
        record) can only exist when the id was lost, and `delete` looks for them again.
        """
        return self.found_by_id(ctx) or self.find_by_name(ctx) or None

    def delete(self, ctx: Context, observed: Observation) -> None:
        """Every access point of the environment, duplicates included."""
        found: list[dict[str, Any]] = list(observed.found or [])
        seen = {ap["AccessPointId"] for ap in found}
        found += [ap for ap in self.find_by_name(ctx) if ap["AccessPointId"] not in seen]
        if found:
            self.remove_tolerant(ctx.clients, ctx.settings, found)

    def find_by_id(self, ctx: Context, recorded: str) -> list[dict[str, Any]]:
        """The recorded access point, unless it is being deleted (served from the file
        system's listing once it is available; while it is created, read on its own)."""

        def direct() -> list[dict[str, Any]] | None:
            answer = ctx.clients.efs.describe_access_points(AccessPointId=recorded)
            return [dict(ap) for ap in answer["AccessPoints"] if not _going(ap)] or None

        found: list[dict[str, Any]] | None = self.cached(
            ctx, LISTED, ctx.settings.file_system_id, recorded,
            bulk=lambda: file_system_access_points(ctx.clients, ctx.settings),
            direct=direct, settled=_available,
        )
        return found or []

    def find_by_name(self, ctx: Context) -> list[dict[str, Any]]:
        """Access points on the shared file system with our environment and Name tags."""
        pages = ctx.clients.efs.get_paginator("describe_access_points").paginate(
            FileSystemId=ctx.settings.file_system_id
        )
        return [
            dict(ap) for page in pages for ap in page.get("AccessPoints", []) if _is_ours(ctx, ap)
        ]

    def inspect(self, ctx: Context, found: list[dict[str, Any]]) -> Observation:
        """Stale when root, POSIX user or our tags differ, or the directory is gone."""
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
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create (or adopt) the access point, record it, then make the tenant's directory.

        Neither AWS nor moto refuses a second access point with the same tags, so create
        checks first when the observation found none (it may be stale: a pass we do not
        remember may have made one since).
        """
        found = observed.found or self.find(ctx)
        if found:
            ap = found[0]
            log.info("adopting access point %s for %s", ap["AccessPointId"], ctx.names.tenant)
        else:
            ap = self._create(ctx)
        ctx.remember(_ids(ap))
        self.ensure_directory(ctx)

    def _create(self, ctx: Context) -> dict[str, Any]:
        """CreateAccessPoint with a fresh token per call (the lookup makes create idempotent;
        a deterministic token could collide with an access point deleted earlier).

        botocore repeats the request, token and all, when an answer is lost; EFS then
        answers AccessPointAlreadyExists with the id of the one the first attempt made.
        """
        try:
            ap: dict[str, Any] = ctx.clients.efs.create_access_point(
                ClientToken=str(uuid.uuid4()), **desired_access_point(ctx)
            )
        except ClientError as exc:
            if aws.error_code(exc) != ALREADY_EXISTS or not exc.response.get("AccessPointId"):
                raise
            found = self.find_by_id(ctx, str(exc.response["AccessPointId"]))
            if not found:
                raise
            ap = found[0]
            log.info("access point %s of %s made by a repeated request", ap["AccessPointId"],
                     ctx.names.tenant)
            return ap
        log.info("created access point %s for %s", ap["AccessPointId"], ctx.names.tenant)
        return ap

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
        ap = observed.found[0]
        drift = immutable_drift(ctx, ap)
        if drift:
            raise PermanentError(reasons.ACCESS_POINT_IMMUTABLE, drift)
        tags = missing_tags(ctx, ap)
        if tags:
            self._tag(ctx.clients, str(ap["AccessPointId"]), tags)
        ctx.remember(_ids(ap))
        self.ensure_directory(ctx)

    @staticmethod
    def _tag(clients: Any, access_point_id: str, tags: Mapping[str, str]) -> None:
        clients.efs.tag_resource(ResourceId=access_point_id, Tags=tag_list(tags))

    def remove(self, clients: Any, settings: Settings, found: list[dict[str, Any]]) -> None:
        """Delete every access point found; the directory below stays (the archive hook's)."""
        for ap in found:
            try:
                clients.efs.delete_access_point(AccessPointId=ap["AccessPointId"])
            except ClientError as exc:
                if not self.is_gone(exc):  # one gone must not keep the others
                    raise
            log.info("deleted access point %s", ap["AccessPointId"])

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """TagResource on the recorded access point."""
        self._tag(ctx.clients, recorded, tags)

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """Every access point of the shared file system with our managed-by tag."""
        if not settings.file_system_id:
            return
        paginator = clients.efs.get_paginator("describe_access_points")
        for page in paginator.paginate(FileSystemId=settings.file_system_id):
            for ap in page.get("AccessPoints", []):
                found = self._found(dict(ap))
                if found is not None and found.tags.get(TAG_MANAGED_BY) == settings.operator_name:
                    yield found

    @staticmethod
    def _found(ap: dict[str, Any]) -> Found | None:
        """One access point as the scan reports it (in the list shape `remove` takes)."""
        if _going(ap):
            return None
        details = {
            "arn": ap.get("AccessPointArn"),
            "fileSystemId": ap.get("FileSystemId"),
            "rootPath": (ap.get("RootDirectory") or {}).get("Path"),
        }
        return Found(str(ap["AccessPointId"]), [ap], tag_dict(ap.get("Tags")), details)

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The access point with its current tags; None when gone or going."""
        try:
            found = clients.efs.describe_access_points(AccessPointId=item.id)["AccessPoints"]
        except ClientError as exc:
            if self.is_gone(exc):
                return None
            raise
        return self._found(dict(found[0])) if found else None
