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

from wpenv import reasons
from wpenv.archive.database import database_exists, dump_database, open_connection, verify_dump
from wpenv.archive.errors import ArchiveError
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
from wpenv.archive.s3stream import ArchivedObject, Destination, put_bytes, require_object
from wpenv.mysql import DatabaseServer, master_server
from wpenv.plan import archive_prefix, archive_timestamp, names_for, tenant_directory
from wpenv.settings import Settings

log = logging.getLogger(__name__)

NO_BUCKET = "WPENV_ARCHIVE_BUCKET is not set: there is nowhere to archive to"
NO_DATABASE = "database {name} did not exist; nothing to dump"


def archive_database_of(
    server: DatabaseServer, s3: Any, database: str, *, bucket: str, prefix: str, kms: str = ""
) -> DatabaseArtefact | None:
    """Dump `database` to `<prefix>/database.sql.gz` and prove the dump restores to it.

    None when the database does not exist (nothing to keep). Raises ArchiveError /
    ArchiveVerificationError; S3 and MySQL errors propagate.
    """
    with closing(open_connection(server)) as conn:
        if not database_exists(conn, database):
            return None
    dump = dump_database(
        server, database, Destination(s3, bucket, artefact_key(prefix, DATABASE), kms)
    )
    verify_dump(server, s3, database, dump.object, dump.tables)
    return DatabaseArtefact.from_dump(dump)


def archive_files_of(
    s3: Any, directory: Path, *, bucket: str, prefix: str, kms: str = ""
) -> FilesArtefact:
    """Tar `directory` to `<prefix>/files.tar.gz` and prove the tar lists it, entry by entry."""
    to = Destination(s3, bucket, artefact_key(prefix, FILES), kms)
    archive = archive_directory(directory, to)
    verify_archive(directory, s3, archive.object)
    return FilesArtefact.from_archive(archive)


def _put_checked(s3: Any, bucket: str, key: str, body: bytes, kms: str) -> ArchivedObject:
    """Write a small object and read it back: it counts only once S3 returns it intact."""
    written = put_bytes(s3, bucket, key, body, kms_key_id=kms)
    require_object(s3, written)
    return written


def put_users(
    s3: Any, users: Any, *, bucket: str, prefix: str, kms: str = ""
) -> Artefact | None:
    """Write `users` (the Cognito export, any JSON-serialisable value) as users.json.

    None, and nothing written, when there is no export.
    """
    if users is None:
        return None
    body = json.dumps(users, indent=2, sort_keys=True, default=str).encode() + b"\n"
    written = _put_checked(s3, bucket, artefact_key(prefix, USERS), body, kms)
    artefact: Artefact = Artefact.of(written)
    return artefact


def put_manifest(s3: Any, manifest: Manifest, kms: str = "") -> ArchivedObject:
    """Write manifest.json at its prefix and read it back."""
    key = artefact_key(manifest.prefix, MANIFEST)
    return _put_checked(s3, manifest.bucket, key, manifest.to_json(), kms)


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
        raise ArchiveError(reasons.ARCHIVE_BUCKET_UNSET, NO_BUCKET)
    bucket, kms = settings.archive_bucket, settings.archive_kms_key_id
    moment = now or datetime.now(UTC)
    prefix = archive_prefix(settings, namespace, name, moment)
    names = names_for(namespace, name, tenant)
    s3 = clients.s3
    server = server or master_server(settings, clients)
    notes: list[str] = []
    log.info("archiving %s/%s (tenant %s) to s3://%s/%s/", namespace, name, tenant, bucket, prefix)

    database = archive_database_of(
        server, s3, names.database, bucket=bucket, prefix=prefix, kms=kms
    )
    if database is None:
        notes.append(NO_DATABASE.format(name=names.database))
        log.warning(notes[-1])
    directory = tenant_directory(settings, tenant)
    files = archive_files_of(s3, directory, bucket=bucket, prefix=prefix, kms=kms)
    if files.source_missing:
        notes.append(f"directory {directory} did not exist; files.tar.gz is empty")
    users_artefact = put_users(s3, users, bucket=bucket, prefix=prefix, kms=kms)

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
    put_manifest(s3, manifest, kms)
    log.info("archived %s/%s: %s", namespace, name, dict(manifest.summary()))
    return manifest
