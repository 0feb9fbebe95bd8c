"""Restore an archive into a *new* tenant's environment, and list the archives there are.

Restoring never creates anything the operator owns: the new environment is provisioned
first (kubectl apply a WordPressEnvironment with the new tenantId), which makes its
database, database user and secret, and its directory on EFS; the restore fills them.
A database that already has tables, or a directory that is not empty, is refused unless
`force` is given (then the database is dropped and re-created empty first, and files are
extracted over what is there).

Each object's size and sha256 are checked against the manifest in a first streaming pass
before anything is changed, so a damaged archive leaves the target untouched; the second
pass loads it. The database is loaded as the new tenant's own MySQL user (its login from
its secret, on the settings' endpoint over verified TLS, which the user requires), so
triggers, views, routines and events end up belonging to that user (see
wpenv.archive.database on definers), and its tables are then checked against the
manifest's row counts and checksums. Files are extracted with tarfile's "data" filter (no
absolute names, no `..`, no links out of the directory, no device files; links it refuses
are skipped and reported) and, when running as root, owned by the new tenant's POSIX user.
"""

from __future__ import annotations

import logging
import os
import tarfile
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons
from wpenv.archive.database import (
    TableCheck,
    compare_checks,
    create_database,
    database_charset,
    database_exists,
    load_archive,
    open_connection,
    table_checks,
    table_names,
)
from wpenv.archive.errors import ArchiveError, ArchiveVerificationError
from wpenv.archive.files import archived_tar, shown
from wpenv.archive.manifest import DATABASE, FILES, MANIFEST, USERS, Artefact, Manifest
from wpenv.archive.s3stream import ArchivedObject, parse_s3_uri, require_object
from wpenv.mysql import DatabaseServer, login_from_secret, master_server
from wpenv.plan import Names, names_for, tenant_directory
from wpenv.settings import Settings

log = logging.getLogger(__name__)

NO_MANIFEST = "{uri} has no readable manifest.json: not a complete archive"
NO_ARTEFACT = "the archive holds no {what}"
NO_DATABASE = (
    "database {database} does not exist: provision an environment with tenantId {tenant} "
    "first, then restore into it"
)
MISSING_LOGIN = (
    "the database secret {secret} of tenant {tenant} is missing: provision the environment first"
)
NOT_EMPTY_DATABASE = "database {database} already has {count} tables; pass --force to replace them"
NO_DIRECTORY = (
    "directory {path} does not exist: provision an environment with tenantId {tenant} first"
)
NOT_EMPTY_DIRECTORY = "directory {path} is not empty; pass --force to extract over it"
RESTORED_DIFFERS = "the restored database {database} does not match the archive: {problems}"
CORRUPT = "{uri} could not be extracted ({detail})"


@dataclass(frozen=True)
class ArchiveLocation:
    """An archive's bucket and prefix (no trailing slash)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> ArchiveLocation:
        """From `s3://bucket/<prefix>/<namespace>/<name>/<timestamp>/` (slash optional)."""
        bucket, key = parse_s3_uri(uri)
        return cls(bucket, key.strip("/"))

    @property
    def uri(self) -> str:
        """`s3://bucket/prefix/`."""
        return f"s3://{self.bucket}/{self.prefix}/"

    def key(self, file_name: str) -> str:
        """Where an artefact of this archive is (its manifest key may name another place,
        if the archive was copied)."""
        return f"{self.prefix}/{file_name}" if self.prefix else file_name

    def archived(self, artefact: Artefact) -> ArchivedObject:
        """The artefact as the streaming code checks it, at this location."""
        return artefact.archived(self.bucket, self.key(artefact.file_name))


@dataclass
class RestoreResult:
    """What a restore did."""

    tenant: str
    database: str | None = None
    tables: dict[str, TableCheck] = field(default_factory=dict)
    directory: str | None = None
    entries: int = 0
    skipped: list[str] = field(default_factory=list)


def read_manifest(s3: Any, location: ArchiveLocation) -> Manifest:
    """The archive's manifest; a missing or unreadable one means an incomplete archive."""
    try:
        body = s3.get_object(Bucket=location.bucket, Key=location.key(MANIFEST))["Body"]
        try:
            data = body.read()
        finally:
            body.close()
    except ClientError as exc:
        if aws.error_code(exc) in ("NoSuchKey", "404"):
            raise ArchiveError(
                reasons.MANIFEST_MISSING, NO_MANIFEST.format(uri=location.uri)
            ) from None
        raise
    try:
        return Manifest.from_json(data)
    except ValueError:  # pydantic's ValidationError is a ValueError
        raise ArchiveError(
            reasons.MANIFEST_UNREADABLE, NO_MANIFEST.format(uri=location.uri)
        ) from None


def check_object(s3: Any, archived: ArchivedObject) -> None:
    """First pass: the object is exactly what the manifest says, before anything changes."""
    require_object(s3, archived)


def restore_database(
    settings: Settings,
    clients: Any,
    location: ArchiveLocation,
    manifest: Manifest,
    names: Names,
    *,
    force: bool = False,
    master: DatabaseServer | None = None,
) -> dict[str, TableCheck]:
    """Load database.sql.gz into the new tenant's (existing) database and check its tables."""
    artefact = manifest.database
    if artefact is None:
        raise ArchiveError(reasons.NOTHING_TO_RESTORE, NO_ARTEFACT.format(what=DATABASE))
    archived = location.archived(artefact)
    s3 = clients.s3
    master = master or master_server(settings, clients)
    database = names.database
    with closing(open_connection(master)) as conn:
        if not database_exists(conn, database):
            raise ArchiveError(
                reasons.RESTORE_TARGET_MISSING,
                NO_DATABASE.format(database=database, tenant=names.tenant),
            )
        existing = table_names(conn, database, base_only=False)
        if existing and not force:
            raise ArchiveError(
                reasons.RESTORE_TARGET_NOT_EMPTY,
                NOT_EMPTY_DATABASE.format(database=database, count=len(existing)),
            )
    try:
        tenant = login_from_secret(settings, clients, names.db_secret)
    except ClientError as exc:
        if aws.error_code(exc) == "ResourceNotFoundException":
            raise ArchiveError(
                reasons.RESTORE_TARGET_MISSING,
                MISSING_LOGIN.format(secret=names.db_secret, tenant=names.tenant),
            ) from None
        raise
    check_object(s3, archived)
    if existing:
        with closing(open_connection(master)) as conn:
            create_database(conn, database, database_charset(conn, database), fresh=True)
        log.info("dropped and re-created database %s (--force)", database)
    load_archive(tenant, database, s3, archived)
    with closing(open_connection(master)) as conn:
        restored = table_checks(conn, database)
    problems = compare_checks(artefact.checks(), restored, "the archive", "the restored database")
    if problems:
        raise ArchiveVerificationError(
            reasons.RESTORE_MISMATCH,
            RESTORED_DIFFERS.format(database=database, problems="; ".join(problems[:10])),
        )
    log.info("restored %s into database %s (%d tables)", archived.uri, database, len(restored))
    return restored


def _extraction_filter(uid: int | None, skipped: list[str]) -> Any:
    """tarfile's "data" filter; links it refuses are skipped, owners set to `uid` if given."""
    refusable = (
        tarfile.AbsoluteLinkError,
        tarfile.LinkOutsideDestinationError,
        tarfile.SpecialFileError,
    )

    def keep(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
        try:
            safe = tarfile.data_filter(member, destination)
        except refusable as exc:
            skipped.append(member.name)
            log.warning("skipped %s: %s", shown(member.name), type(exc).__name__)
            return None
        if uid is not None:
            safe = safe.replace(uid=uid, gid=uid, uname="", gname="", deep=False)
        return safe

    return keep


def restore_files(
    settings: Settings,
    s3: Any,
    location: ArchiveLocation,
    manifest: Manifest,
    names: Names,
    *,
    force: bool = False,
) -> tuple[str, int, list[str]]:
    """Extract files.tar.gz into the new tenant's (existing) directory.

    Returns (directory, entries extracted, names skipped).
    """
    artefact = manifest.files
    if artefact is None:
        raise ArchiveError(reasons.NOTHING_TO_RESTORE, NO_ARTEFACT.format(what=FILES))
    archived = location.archived(artefact)
    target = tenant_directory(settings, names.tenant)
    if not target.is_dir():
        raise ArchiveError(
            reasons.RESTORE_TARGET_MISSING, NO_DIRECTORY.format(path=target, tenant=names.tenant)
        )
    if any(target.iterdir()) and not force:
        raise ArchiveError(
            reasons.RESTORE_TARGET_NOT_EMPTY, NOT_EMPTY_DIRECTORY.format(path=target)
        )
    check_object(s3, archived)
    uid = names.posix_uid if os.geteuid() == 0 else None
    skipped: list[str] = []
    with archived_tar(s3, archived, CORRUPT) as tar:
        keep = _extraction_filter(uid, skipped)
        # The "data" filter (inside keep) makes extraction safe.
        tar.extractall(target, filter=keep, numeric_owner=True)  # noqa: S202
        entries = len(tar.getmembers()) - len(skipped)
    log.info(
        "restored %s into %s (%d entries, %d skipped)", archived.uri, target, entries, len(skipped)
    )
    return str(target), entries, skipped


def restore(
    settings: Settings,
    clients: Any,
    uri: str,
    tenant: str,
    *,
    database: bool = True,
    files: bool = True,
    force: bool = False,
) -> RestoreResult:
    """Restore the archive at `uri` into tenant `tenant`'s environment (database, files)."""
    location = ArchiveLocation.parse(uri)
    manifest = read_manifest(clients.s3, location)
    names = names_for(manifest.namespace, manifest.name, tenant)
    result = RestoreResult(tenant=tenant)
    if database:
        result.tables = restore_database(settings, clients, location, manifest, names, force=force)
        result.database = names.database
    if files:
        directory, entries, skipped = restore_files(
            settings, clients.s3, location, manifest, names, force=force
        )
        result.directory, result.entries, result.skipped = directory, entries, skipped
    return result


@dataclass(frozen=True)
class ArchiveListing:
    """One archive under a prefix: complete when its manifest exists."""

    uri: str
    complete: bool
    objects: int
    size: int


def list_archives(s3: Any, uri: str) -> list[ArchiveListing]:
    """Every archive under `uri` (any depth), oldest first: the directories holding our files."""
    bucket, prefix = parse_s3_uri(uri)
    known = {DATABASE, FILES, USERS, MANIFEST}
    found: dict[str, list[int]] = {}  # directory -> [objects, bytes, has manifest]
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            directory, _, file_name = str(item["Key"]).rpartition("/")
            if file_name not in known:
                continue
            entry = found.setdefault(directory, [0, 0, 0])
            entry[0] += 1
            entry[1] += int(item.get("Size", 0))
            entry[2] |= file_name == MANIFEST
    return [
        ArchiveListing(f"s3://{bucket}/{directory}/", bool(entry[2]), entry[0], entry[1])
        for directory, entry in sorted(found.items())
    ]
