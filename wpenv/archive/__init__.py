"""Archives of a tenant's data in S3, made before deprovisioning deletes it (HLD 3.4, 5.4).

`archive_environment` is the finalizer's one call: it dumps and verifies the database,
archives and verifies the tenant's directory, and writes manifest.json last. The pieces
(`dump_database`, `verify_dump`, `archive_directory`, `verify_archive`, the S3 streams)
are usable on their own; `python -m wpenv.archive` lists and restores archives.
"""

from wpenv.archive.database import (
    DatabaseDump,
    TableCheck,
    dump_database,
    table_checks,
    verify_dump,
)
from wpenv.archive.environment import archive_environment
from wpenv.archive.errors import ArchiveError, ArchiveVerificationError
from wpenv.archive.files import FilesArchive, Member, archive_directory, verify_archive
from wpenv.archive.manifest import Manifest
from wpenv.archive.restore import ArchiveListing, RestoreResult, list_archives, restore
from wpenv.archive.s3stream import ArchivedObject, S3Reader, S3Writer, iter_object
from wpenv.mysql import DatabaseServer, master_server
from wpenv.plan import tenant_directory

__all__ = [
    "ArchiveError",
    "ArchiveListing",
    "ArchiveVerificationError",
    "ArchivedObject",
    "DatabaseDump",
    "DatabaseServer",
    "FilesArchive",
    "Manifest",
    "Member",
    "RestoreResult",
    "S3Reader",
    "S3Writer",
    "TableCheck",
    "archive_directory",
    "archive_environment",
    "dump_database",
    "iter_object",
    "list_archives",
    "master_server",
    "restore",
    "table_checks",
    "tenant_directory",
    "verify_archive",
    "verify_dump",
]
