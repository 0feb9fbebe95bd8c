"""manifest.json: what one archive holds, written last so its presence means "complete".

An archive is the directory `<archive_prefix>/<namespace>/<name>/<timestamp>/` in the
archive bucket (see `wpenv.plan.archive_prefix`) with up to three artefacts and this
manifest. It lists each artefact's key, size and sha256, the database's table checks and
the file archive's entry count, so a restore can prove it got back what was archived
without the original (which is gone by then). camelCase on the wire, like the CRD.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from wpenv.archive.database import DatabaseDump, TableCheck
from wpenv.archive.files import FilesArchive
from wpenv.archive.s3stream import ArchivedObject
from wpenv.plan import archive_prefix

__all__ = [
    "DATABASE",
    "FILES",
    "FORMAT_VERSION",
    "MANIFEST",
    "USERS",
    "Artefact",
    "DatabaseArtefact",
    "FilesArtefact",
    "Manifest",
    "TableCheckEntry",
    "archive_prefix",
    "artefact_key",
]

FORMAT_VERSION = 1
DATABASE = "database.sql.gz"
FILES = "files.tar.gz"
USERS = "users.json"
MANIFEST = "manifest.json"


def artefact_key(prefix: str, file_name: str) -> str:
    """The key of one artefact (or the manifest) inside an archive's prefix."""
    return f"{prefix.rstrip('/')}/{file_name}"


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields kept out of the way."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class TableCheckEntry(_Model):
    """Rows and CHECKSUM TABLE of one table when it was dumped."""

    rows: int
    checksum: int | None = None

    def check(self) -> TableCheck:
        """As the database module compares it."""
        return TableCheck(rows=self.rows, checksum=self.checksum)


class Artefact(_Model):
    """One object of the archive."""

    key: str = Field(description="Full key in the bucket.")
    size: int = Field(description="Bytes of the object as stored.")
    sha256: str = Field(description="Hex sha256 of the object as stored.")

    @property
    def file_name(self) -> str:
        """The last part of the key (database.sql.gz, ...)."""
        return self.key.rsplit("/", 1)[-1]

    def archived(self, bucket: str, key: str | None = None) -> ArchivedObject:
        """As the streaming code checks it; `key` overrides where the object is now."""
        where = key or self.key
        return ArchivedObject(f"s3://{bucket}/{where}", bucket, where, self.size, self.sha256)

    @classmethod
    def of(cls, archived: ArchivedObject, **extra: Any) -> Any:
        """From what a writer returned."""
        return cls(key=archived.key, size=archived.size, sha256=archived.sha256, **extra)


class DatabaseArtefact(Artefact):
    """The gzipped SQL dump, with its tables' checks."""

    database: str = Field(description="The database that was dumped.")
    tables: dict[str, TableCheckEntry] = Field(default_factory=dict)

    @classmethod
    def from_dump(cls, dump: DatabaseDump) -> DatabaseArtefact:
        """From dump_database's result."""
        tables = {
            name: TableCheckEntry(rows=check.rows, checksum=check.checksum)
            for name, check in dump.tables.items()
        }
        artefact: DatabaseArtefact = cls.of(dump.object, database=dump.database, tables=tables)
        return artefact

    def checks(self) -> dict[str, TableCheck]:
        """The table checks as the database module compares them."""
        return {name: entry.check() for name, entry in self.tables.items()}


class FilesArtefact(Artefact):
    """The tar.gz of the tenant's directory."""

    directory: str = Field(description="The directory that was archived.")
    source_missing: bool = Field(False, description="It did not exist; the tar is empty.")
    members: int = Field(description="Entries in the tar (files, directories, links).")
    total_bytes: int = Field(description="Bytes of file content before compression.")

    @classmethod
    def from_archive(cls, archive: FilesArchive) -> FilesArtefact:
        """From archive_directory's result."""
        artefact: FilesArtefact = cls.of(
            archive.object,
            directory=archive.directory,
            source_missing=archive.missing,
            members=archive.count,
            total_bytes=archive.total_bytes,
        )
        return artefact


class Manifest(_Model):
    """Everything one archive holds and where it came from."""

    format_version: int = FORMAT_VERSION
    namespace: str
    name: str
    tenant_id: str
    timestamp: str = Field(description="UTC, like 20261127T143000Z: the prefix's last part.")
    created_at: datetime
    bucket: str
    prefix: str
    database: DatabaseArtefact | None = None
    files: FilesArtefact | None = None
    users: Artefact | None = None
    notes: list[str] = Field(default_factory=list, description="What was left out, and why.")

    def artefacts(self) -> list[Artefact]:
        """The artefacts present, database first."""
        present: list[Artefact | None] = [self.database, self.files, self.users]
        return [artefact for artefact in present if artefact is not None]

    def to_json(self) -> bytes:
        """The manifest.json bytes."""
        return self.model_dump_json(by_alias=True, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes | str) -> Manifest:
        """Parse manifest.json."""
        return cls.model_validate_json(data)

    def summary(self) -> Mapping[str, Any]:
        """A short dict for logs and Events: sizes and counts, no table names."""
        return {
            "prefix": self.prefix,
            "artefacts": {a.file_name: a.size for a in self.artefacts()},
            "tables": len(self.database.tables) if self.database else 0,
            "files": self.files.members if self.files else 0,
        }
