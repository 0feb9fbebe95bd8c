"""Archive one environment's data before it is deleted: the finalizer's single call.

Order: database dump, its verification, the file archive, its verification, users.json,
and manifest.json last, so a manifest exists only for an archive that was proven to hold
the data. Anything that cannot be proven raises; the caller must then keep the database
and the files (HLD 5.4: data is archived before deletion, never instead of it).

A retry with the same `now` overwrites the same prefix, so the caller should fix the
timestamp once (e.g. in the status) before the first attempt; a retry with a new one
leaves the earlier attempt's objects without a manifest, which `list` shows as incomplete.
"""

from __future__ import annotations

import json
import logging
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wpenv.archive.database import (
    DatabaseServer,
    database_exists,
    dump_database,
    master_server,
    open_connection,
    verify_dump,
)
from wpenv.archive.errors import ArchiveError, ArchiveVerificationError
from wpenv.archive.files import archive_directory, verify_archive
from wpenv.archive.manifest import (
    DATABASE,
    FILES,
    MANIFEST,
    USERS,
    Artefact,
    DatabaseArtefact,
    FilesArtefact,
    Manifest,
    artefact_key,
)
from wpenv.archive.s3stream import ArchivedObject, object_digest, put_bytes
from wpenv.plan import archive_prefix, archive_timestamp, names_for
from wpenv.settings import Settings

log = logging.getLogger(__name__)

NO_BUCKET = "WPENV_ARCHIVE_BUCKET is not set: there is nowhere to archive to"
NO_DATABASE = "database {name} did not exist; nothing to dump"
UNREADABLE = "{uri} did not read back as written"


def tenant_directory(settings: Settings, tenant: str) -> Path:
    """Where the operator sees a tenant's root directory: `<efs_mount_path>/tenants/<tenant>`."""
    root = names_for("", "", tenant).access_point_root
    return Path(settings.efs_mount_path) / root.lstrip("/")


def _read_back(s3: Any, written: ArchivedObject) -> None:
    """A small object must read back byte for byte (same size and sha256)."""
    if object_digest(s3, written.bucket, written.key) != written:
        raise ArchiveVerificationError(
            "ArchiveChecksumMismatch", UNREADABLE.format(uri=written.uri)
        )


def archive_environment(
    settings: Settings,
    clients: Any,
    namespace: str,
    name: str,
    tenant: str,
    *,
    now: datetime | None = None,
    users: Any = None,
    server: DatabaseServer | None = None,
) -> Manifest:
    """Archive and verify the tenant's database and files, then write manifest.json.

    `clients` is a `wpenv.aws.Clients`; `users` any JSON-serialisable value (the Cognito
    export) or None; `server` defaults to the master login from the master secret.
    A database that does not exist is noted in the manifest, not an error (provisioning
    may have failed before creating it); a missing directory gives an empty tar.
    Raises ArchiveError / ArchiveVerificationError; S3 and MySQL errors propagate.
    """
    if not settings.archive_bucket:
        raise ArchiveError("ArchiveBucketUnset", NO_BUCKET)
    bucket = settings.archive_bucket
    kms = settings.archive_kms_key_id
    moment = now or datetime.now(UTC)
    prefix = archive_prefix(settings, namespace, name, moment)
    names = names_for(namespace, name, tenant)
    s3 = clients.s3
    server = server or master_server(settings, clients)
    notes: list[str] = []
    log.info("archiving %s/%s (tenant %s) to s3://%s/%s/", namespace, name, tenant, bucket, prefix)

    with closing(open_connection(server)) as conn:
        exists = database_exists(conn, names.database)
    database: DatabaseArtefact | None = None
    if exists:
        dump = dump_database(
            server, names.database, s3, bucket, artefact_key(prefix, DATABASE), kms_key_id=kms
        )
        verify_dump(server, s3, names.database, dump.object, dump.tables)
        database = DatabaseArtefact.from_dump(dump)
    else:
        notes.append(NO_DATABASE.format(name=names.database))
        log.warning(notes[-1])

    directory = tenant_directory(settings, tenant)
    archive = archive_directory(directory, s3, bucket, artefact_key(prefix, FILES), kms_key_id=kms)
    verify_archive(directory, s3, archive.object)
    files = FilesArtefact.from_archive(archive)
    if archive.missing:
        notes.append(f"directory {directory} did not exist; files.tar.gz is empty")

    users_artefact: Artefact | None = None
    if users is not None:
        body = json.dumps(users, indent=2, sort_keys=True, default=str).encode() + b"\n"
        written = put_bytes(s3, bucket, artefact_key(prefix, USERS), body, kms_key_id=kms)
        _read_back(s3, written)
        users_artefact = Artefact.of(written)

    manifest = Manifest(
        namespace=namespace,
        name=name,
        tenant_id=tenant,
        timestamp=archive_timestamp(moment),
        created_at=datetime.now(UTC),
        bucket=bucket,
        prefix=prefix,
        database=database,
        files=files,
        users=users_artefact,
        notes=notes,
    )
    key = artefact_key(prefix, MANIFEST)
    _read_back(s3, put_bytes(s3, bucket, key, manifest.to_json(), kms_key_id=kms))
    log.info("archived %s/%s: %s", namespace, name, dict(manifest.summary()))
    return manifest
