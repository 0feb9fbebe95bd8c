"""Deprovisioning (HLD 3.4): archive, verify, then remove — in the HLD's order.

The finalizer runs a `Deprovisioner` once per attempt. Every step is idempotent, so an attempt
cut short (a crash, an error) is simply run again from the top: deletes of what is already
gone are reads, and data is archived again if it still exists. Nothing holding data is
removed before its archive is written *and* verified:

1. listener rule, then target group          5. verify the dump (restore into a scratch DB)
2. autoscaling, service, task definitions    6. drop the database and its user
3. Cognito (users exported first), pool       7. archive and verify the files, then remove
4. dump the database to S3                    8. secrets, access point, task role, SG

The archive goes to `<prefix>/<namespace>/<name>/<timestamp>/` (see wpenv.plan); its
manifest.json is rewritten after each artefact, so it is also the durable record of what
an earlier attempt already archived and verified.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.archive import database as db_archive
from wpenv.archive.environment import archive_database_of, archive_files_of, put_manifest
from wpenv.archive.manifest import (
    DATABASE,
    FILES,
    MANIFEST,
    USERS,
    Artefact,
    Manifest,
    artefact_key,
)
from wpenv.archive.s3stream import object_digest, parse_s3_uri, s3_uri
from wpenv.reconcilers.access_point import tenant_directory
from wpenv.reconcilers.base import (
    MISSING,
    Context,
    PermanentError,
    Resource,
    TransientError,
)

log = logging.getLogger(__name__)

# Which resources each removal step deletes, in order (kinds; absent ones are skipped).
ROUTING = ("ListenerRule", "TargetGroup")
COMPUTE = ("Autoscaling", "Service", "TaskDefinition")
IDENTITY = ("UserPoolClient", "UserPoolDomain", "UserPoolGroups", "UserPool")
LAST = ("ClientSecret", "DatabaseSecret", "AccessPoint", "TaskRole", "SecurityGroup")
STEPS = 8

Report = Callable[[int, str], None]


@dataclass
class Archive:
    """Where this deprovisioning archives, and what its manifest says so far."""

    bucket: str
    prefix: str
    manifest: Manifest | None = None
    locations: dict[str, str] = field(default_factory=dict)

    def key(self, name: str) -> str:
        """The object key of one artefact."""
        return artefact_key(self.prefix, name)

    def uri(self, name: str = "") -> str:
        """`s3://bucket/prefix/name` (the prefix itself with a trailing slash for "")."""
        return s3_uri(self.bucket, self.key(name) if name else f"{self.prefix}/")


def read_manifest(ctx: Context, archive: Archive) -> Manifest:
    """The manifest an earlier attempt wrote at this location, or a fresh one."""
    try:
        body = ctx.clients.s3.get_object(Bucket=archive.bucket, Key=archive.key(MANIFEST))["Body"]
        return Manifest.from_json(body.read())
    except ClientError as exc:
        if not aws.is_not_found(exc, "NoSuchKey", "404"):
            raise
    return Manifest(
        namespace=ctx.namespace,
        name=ctx.name,
        tenant_id=ctx.spec.tenant_id,
        timestamp=archive.prefix.rpartition("/")[2],
        created_at=datetime.now(UTC),
        bucket=archive.bucket,
        prefix=archive.prefix,
    )


def write_manifest(ctx: Context, archive: Archive) -> None:
    """Write manifest.json (one small put, encrypted like every other artefact)."""
    assert archive.manifest is not None
    put_manifest(ctx.clients.s3, archive.manifest, ctx.settings.archive_kms_key_id)
    archive.locations["manifest"] = archive.uri(MANIFEST)


@dataclass
class Deprovisioner:
    """One attempt at steps 1-8 for one environment."""

    ctx: Context
    resources: Sequence[Resource]
    archive: Archive
    report: Report

    def run(self) -> None:
        """Run every step; raises (and is simply run again later) when one cannot finish."""
        ctx, archive = self.ctx, self.archive
        archive.manifest = read_manifest(ctx, archive)
        removed = self.delete(ROUTING)
        self.report(1, f"routing removed ({', '.join(removed) or 'already gone'})")
        removed = self.delete(COMPUTE)
        self.report(2, f"compute removed ({', '.join(removed) or 'already gone'})")
        ctx.archive_key_prefix = archive.prefix
        removed = self.delete(IDENTITY)
        self.note_users()
        users = archive.locations.get("users")
        what = f"users exported to {users}; " if users else ""
        self.report(3, f"identity removed ({what}{', '.join(removed) or 'no user pool'})")
        self.archive_database()
        self.archive_files()
        known = set(ROUTING + COMPUTE + IDENTITY + LAST + ("Database",))
        rest = tuple(r.kind for r in reversed(self.resources) if r.kind not in known)
        removed = self.delete(LAST + rest)
        self.report(8, f"removed {', '.join(removed) or 'nothing (already gone)'}")
        write_manifest(ctx, archive)

    def delete(self, kinds: Sequence[str]) -> list[str]:
        """Delete the resources of `kinds` in that order; the kinds that were present."""
        by_kind = {resource.kind: resource for resource in self.resources}
        removed = []
        for kind in kinds:
            resource = by_kind.get(kind)
            if resource is None:
                continue
            try:
                observed = resource.observe(self.ctx)
            except (TransientError, PermanentError) as exc:
                # e.g. the database cannot be observed without its (hand-deleted) secret;
                # delete() needs less than observe() and tolerates "already gone".
                log.info("deleting %s without observing it first: %s", kind, exc)
                observed = MISSING
            resource.delete(self.ctx)
            self.ctx.forget(observed.ids)
            if observed.exists:
                removed.append(kind)
        return removed

    def note_users(self) -> None:
        """Record the users export (this attempt's, or an earlier attempt's)."""
        manifest = self.manifest
        users = next((uri for uri in self.ctx.exported if uri.endswith(USERS)), None)
        if users:
            bucket, key = parse_s3_uri(users)
            manifest.users = Artefact.of(object_digest(self.ctx.clients.s3, bucket, key))
            write_manifest(self.ctx, self.archive)
        if manifest.users is not None:
            self.archive.locations["users"] = s3_uri(self.archive.bucket, manifest.users.key)

    @property
    def manifest(self) -> Manifest:
        """The manifest being built (read at the start of `run`)."""
        assert self.archive.manifest is not None
        return self.archive.manifest

    def archive_database(self) -> None:
        """Steps 4-6: dump, verify against a scratch restore, then drop database and user."""
        ctx, archive = self.ctx, self.archive
        name = ctx.names.database
        server = db_archive.master_server(ctx.settings, ctx.clients)
        artefact = archive_database_of(
            server, ctx.clients.s3, name, bucket=archive.bucket, prefix=archive.prefix,
            kms=ctx.settings.archive_kms_key_id,
        )
        if artefact is None:
            self.report(4, f"database {name} is already gone; nothing to dump")
        else:
            self.report(4, f"database {name} dumped to {archive.uri(DATABASE)} "
                           f"({artefact.size} bytes compressed)")
            self.report(5, "the dump restores into a scratch database with identical "
                           f"checksums and row counts in all {len(artefact.tables)} tables")
            self.manifest.database = artefact
            write_manifest(ctx, archive)  # the durable record, before anything is dropped
        if self.manifest.database is not None:
            archive.locations["database"] = archive.uri(DATABASE)
        self.delete(("Database",))
        self.report(6, f"database {name} and user {ctx.names.database_user} dropped")

    def archive_files(self) -> None:
        """Step 7: tar the tenant's directory to S3, read it back to verify, remove it."""
        ctx, archive = self.ctx, self.archive
        directory = tenant_directory(ctx)
        if not directory.exists():
            if self.manifest.files is not None:
                archive.locations["files"] = archive.uri(FILES)
            self.report(7, f"directory {directory} is already gone; nothing to archive")
            return
        files = archive_files_of(
            ctx.clients.s3, directory, bucket=archive.bucket, prefix=archive.prefix,
            kms=ctx.settings.archive_kms_key_id,
        )
        self.manifest.files = files
        write_manifest(ctx, archive)
        archive.locations["files"] = archive.uri(FILES)
        # Symlinks inside are removed, never followed (rmtree does not follow them).
        shutil.rmtree(directory)
        self.report(7, f"{files.members} entries ({files.total_bytes} bytes) archived to "
                       f"{archive.uri(FILES)}, verified, and removed from the file system")
