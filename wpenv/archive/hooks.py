"""The before-delete hooks: what must be archived, and verified, before a kind goes.

A kind that holds the tenant's data names its hook (`Resource.archive`): the user pool
"users", the database "database", the access point "files". The engine's one teardown runs
the hook right before the delete and deletes nothing when it raises. Two sets exist:

- `Everyday` (rollback, identity switched off, orphan cleanup): only what holds something
  is archived, each time to a fresh timestamped prefix. A database without tables, an
  empty directory and a pool without users hold nothing to lose.
- `Deprovisioning` (the finalizer): everything goes to one archive prefix, and
  manifest.json is rewritten after each artefact, so a retry after a crash knows what an
  earlier attempt already archived and verified.

A hook returns a `Note` for the Event that tells a person where the data went.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons
from wpenv.archive import database as db_archive
from wpenv.archive.environment import archive_database_of, archive_files_of, put_manifest
from wpenv.archive.errors import ArchiveError
from wpenv.archive.manifest import DATABASE, FILES, MANIFEST, USERS, Artefact, Manifest
from wpenv.archive.manifest import artefact_key as key_of
from wpenv.archive.s3stream import encryption_args, object_digest, s3_uri
from wpenv.archive.users import export_document
from wpenv.plan import archive_prefix, tenant_directory
from wpenv.reconcilers.base import Context, Observation, Resource

log = logging.getLogger(__name__)

NO_BUCKET = "WPENV_ARCHIVE_BUCKET is not set: there is nowhere to archive {what} to"


@dataclass(frozen=True)
class Note:
    """What a hook archived, for an Event (reason, message); names and URIs, no data."""

    reason: str
    message: str


Hook = Callable[[Context, Resource, Observation], Note | None]
Hooks = Mapping[str, Hook]
Report = Callable[[str], None]


def _bucket(ctx: Context, what: str) -> str:
    if not ctx.settings.archive_bucket:
        raise ArchiveError(reasons.ARCHIVE_BUCKET_UNSET, NO_BUCKET.format(what=what))
    return ctx.settings.archive_bucket


def put_users(ctx: Context, prefix: str, document: Mapping[str, Any]) -> str:
    """Write users.json under `prefix`; its S3 URI."""
    bucket = _bucket(ctx, "the users")
    key = key_of(prefix, USERS)
    ctx.clients.s3.put_object(
        Bucket=bucket, Key=key, Body=json.dumps(document, indent=1, sort_keys=True).encode(),
        ContentType="application/json", **encryption_args(ctx.settings.archive_kms_key_id),
    )
    log.info("exported %d user(s) of pool %s to s3://%s/%s", len(document["users"]),
             document["userPoolId"], bucket, key)
    return s3_uri(bucket, key)


TABLES = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"


def has_tables(ctx: Context) -> bool:
    """Whether the tenant's database exists and holds at least one table."""
    server = db_archive.master_server(ctx.settings, ctx.clients)
    with closing(db_archive.open_connection(server)) as conn, conn.cursor() as cursor:
        cursor.execute(TABLES, (ctx.names.database,))
        row = cursor.fetchone()
    return bool(row and row[0])


def holds_files(directory: Path) -> bool:
    """Whether the directory exists and is not empty."""
    return directory.is_dir() and any(directory.iterdir())


@dataclass
class Everyday:
    """Hooks for rollback, switched-off identity and orphans: archive what holds data."""

    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def prefix(self, ctx: Context) -> str:
        """A fresh timestamped prefix for this environment."""
        return archive_prefix(ctx.settings, ctx.namespace, ctx.name, self.now())

    def users(self, ctx: Context, resource: Resource, observed: Observation) -> Note | None:
        """Export the users and groups of a pool that has users."""
        if observed.found is None:
            return None
        document = export_document(ctx.clients, ctx, observed.found)
        if not document["users"]:
            return None
        uri = put_users(ctx, self.prefix(ctx), document)
        return Note(reasons.USERS_EXPORTED, f"users and groups went to {uri}")

    def database(self, ctx: Context, resource: Resource, observed: Observation) -> Note | None:
        """Dump and verify a database that holds tables."""
        if not has_tables(ctx):
            return None
        prefix = self.prefix(ctx)
        archive_database_of(
            db_archive.master_server(ctx.settings, ctx.clients), ctx.clients.s3,
            ctx.names.database, bucket=_bucket(ctx, "the database"), prefix=prefix,
            kms=ctx.settings.archive_kms_key_id,
        )
        uri = s3_uri(ctx.settings.archive_bucket, key_of(prefix, DATABASE))
        return Note(reasons.DATABASE_ARCHIVED, f"database {ctx.names.database} went to {uri}")

    def files(self, ctx: Context, resource: Resource, observed: Observation) -> Note | None:
        """Tar and verify a directory that holds files, then remove it."""
        directory = tenant_directory(ctx.settings, ctx.names.tenant)
        if not holds_files(directory):
            return None
        prefix = self.prefix(ctx)
        archive_files_of(ctx.clients.s3, directory, bucket=_bucket(ctx, "the files"),
                         prefix=prefix, kms=ctx.settings.archive_kms_key_id)
        shutil.rmtree(directory)  # symlinks inside are removed, never followed
        uri = s3_uri(ctx.settings.archive_bucket, key_of(prefix, FILES))
        return Note(reasons.FILES_ARCHIVED, f"{directory} went to {uri}")

    def hooks(self) -> Hooks:
        """The mapping the engine takes."""
        return {"users": self.users, "database": self.database, "files": self.files}


@dataclass
class Deprovisioning:
    """Hooks for the finalizer: one archive for everything, its manifest kept current."""

    bucket: str
    prefix: str
    report: Report = lambda _message: None
    manifest: Manifest | None = None
    locations: dict[str, str] = field(default_factory=dict)

    def uri(self, name: str = "") -> str:
        """`s3://bucket/prefix/name` (the prefix itself with a trailing slash for "")."""
        return s3_uri(self.bucket, key_of(self.prefix, name) if name else f"{self.prefix}/")

    def start(self, ctx: Context) -> Manifest:
        """The manifest an earlier attempt wrote at this prefix, or a fresh one."""
        try:
            body = ctx.clients.s3.get_object(Bucket=self.bucket,
                                             Key=key_of(self.prefix, MANIFEST))["Body"]
            self.manifest = Manifest.from_json(body.read())
        except ClientError as exc:
            if aws.error_code(exc) not in ("NoSuchKey", "404"):
                raise
            self.manifest = Manifest(
                namespace=ctx.namespace, name=ctx.name, tenant_id=ctx.spec.tenant_id,
                timestamp=self.prefix.rpartition("/")[2], created_at=datetime.now(UTC),
                bucket=self.bucket, prefix=self.prefix,
            )
        for name, artefact in (("database", self.manifest.database),
                               ("files", self.manifest.files), ("users", self.manifest.users)):
            if artefact is not None:
                self.locations[name] = s3_uri(self.bucket, artefact.key)
        return self.manifest

    def write(self, ctx: Context) -> None:
        """Write manifest.json (one small put, encrypted like every other artefact)."""
        assert self.manifest is not None
        put_manifest(ctx.clients.s3, self.manifest, ctx.settings.archive_kms_key_id)
        self.locations["manifest"] = self.uri(MANIFEST)

    def users(self, ctx: Context, resource: Resource, observed: Observation) -> Note | None:
        """Export users and groups (a pool without users too: the archive is complete)."""
        assert self.manifest is not None
        if observed.found is None:
            return None
        uri = put_users(ctx, self.prefix, export_document(ctx.clients, ctx, observed.found))
        self.manifest.users = Artefact.of(
            object_digest(ctx.clients.s3, self.bucket, key_of(self.prefix, USERS))
        )
        self.write(ctx)
        self.locations["users"] = uri
        self.report(f"users and groups exported to {uri}")
        return None

    def database(self, ctx: Context, resource: Resource, observed: Observation) -> Note | None:
        """Dump, then prove the dump restores with identical checksums (before the drop)."""
        assert self.manifest is not None
        name = ctx.names.database
        artefact = archive_database_of(
            db_archive.master_server(ctx.settings, ctx.clients), ctx.clients.s3, name,
            bucket=self.bucket, prefix=self.prefix, kms=ctx.settings.archive_kms_key_id,
        )
        if artefact is None:
            self.report(f"database {name} is already gone; nothing to dump")
        else:
            self.manifest.database = artefact
            self.write(ctx)  # the durable record, before anything is dropped
            self.report(
                f"database {name} dumped to {self.uri(DATABASE)} ({artefact.size} bytes "
                f"compressed); the dump restores into a scratch database with identical "
                f"checksums and row counts in all {len(artefact.tables)} tables"
            )
        if self.manifest.database is not None:
            self.locations["database"] = self.uri(DATABASE)
        return None

    def files(self, ctx: Context, resource: Resource, observed: Observation) -> Note | None:
        """Tar the tenant's directory to S3, read it back to verify, then remove it."""
        assert self.manifest is not None
        directory = tenant_directory(ctx.settings, ctx.names.tenant)
        if not directory.exists():
            if self.manifest.files is not None:
                self.locations["files"] = self.uri(FILES)
            self.report(f"directory {directory} is already gone; nothing to archive")
            return None
        files = archive_files_of(ctx.clients.s3, directory, bucket=self.bucket,
                                 prefix=self.prefix, kms=ctx.settings.archive_kms_key_id)
        self.manifest.files = files
        self.write(ctx)
        self.locations["files"] = self.uri(FILES)
        shutil.rmtree(directory)  # symlinks inside are removed, never followed
        self.report(f"{files.members} entries ({files.total_bytes} bytes) archived to "
                    f"{self.uri(FILES)}, verified, and removed from the file system")
        return None

    def hooks(self) -> Hooks:
        """The mapping the engine takes."""
        return {"users": self.users, "database": self.database, "files": self.files}
