"""Archive prefixes (wpenv.plan) and the manifest model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from wpenv.archive.database import DatabaseDump, TableCheck
from wpenv.archive.files import FilesArchive, Member
from wpenv.archive.manifest import (
    Artefact,
    DatabaseArtefact,
    FilesArtefact,
    Manifest,
    archive_prefix,
    artefact_key,
)
from wpenv.archive.s3stream import ArchivedObject
from wpenv.plan import archive_timestamp
from wpenv.settings import Settings

WHEN = datetime(2026, 11, 27, 14, 30, 0, tzinfo=UTC)


def test_prefix_is_prefix_namespace_name_and_a_utc_timestamp() -> None:
    settings = Settings(archive_prefix="archives")
    expected = "archives/team-a/acme/20261127T143000Z"
    assert archive_prefix(settings, "team-a", "acme", WHEN) == expected
    plus_two = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert archive_prefix(settings, "ns", "n", plus_two) == "archives/ns/n/20261127T143000Z"
    naive = datetime(2026, 11, 27, 14, 30, 0)  # taken as UTC
    assert archive_timestamp(naive) == "20261127T143000Z"
    assert archive_prefix(Settings(archive_prefix="/a/b/"), "ns", "n", WHEN) == (
        "a/b/ns/n/20261127T143000Z"
    )
    assert archive_prefix(Settings(archive_prefix=""), "ns", "n", WHEN) == "ns/n/20261127T143000Z"
    assert artefact_key("a/b/", "manifest.json") == "a/b/manifest.json"


def _manifest() -> Manifest:
    prefix = "archives/ns/acme/20261127T143000Z"
    dump = DatabaseDump(
        database="wp_acme",
        object=ArchivedObject(
            f"s3://b/{prefix}/database.sql.gz", "b", f"{prefix}/database.sql.gz", 1234, "aa" * 32
        ),
        tables={
            "wp_posts": TableCheck(10, 99),
            "wp_empty": TableCheck(0, 0),
            "wp_mem": TableCheck(1, None),
        },
    )
    files = FilesArchive(
        directory="/mnt/efs/tenants/acme",
        object=ArchivedObject(
            f"s3://b/{prefix}/files.tar.gz", "b", f"{prefix}/files.tar.gz", 99, "bb" * 32
        ),
        members=(Member("a", "file", 5), Member("d", "dir", 0), Member("e", "file", 7)),
        missing=False,
    )
    return Manifest(
        namespace="ns",
        name="acme",
        tenant_id="acme",
        timestamp="20261127T143000Z",
        created_at=WHEN,
        bucket="b",
        prefix=prefix,
        database=DatabaseArtefact.from_dump(dump),
        files=FilesArtefact.from_archive(files),
    )


def test_manifest_json_is_camel_case_and_round_trips() -> None:
    manifest = _manifest()
    raw = json.loads(manifest.to_json())
    assert raw["tenantId"] == "acme" and raw["formatVersion"] == 1
    assert raw["database"]["tables"]["wp_posts"] == {"rows": 10, "checksum": 99}
    assert raw["database"]["tables"]["wp_mem"] == {"rows": 1, "checksum": None}
    assert raw["files"] == {
        "key": "archives/ns/acme/20261127T143000Z/files.tar.gz",
        "size": 99,
        "sha256": "bb" * 32,
        "directory": "/mnt/efs/tenants/acme",
        "sourceMissing": False,
        "members": 3,
        "totalBytes": 12,
    }
    assert raw["users"] is None and raw["notes"] == []
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_artefacts_and_their_checks() -> None:
    manifest = _manifest()
    assert [a.file_name for a in manifest.artefacts()] == ["database.sql.gz", "files.tar.gz"]
    assert manifest.database is not None
    assert manifest.database.checks()["wp_posts"] == TableCheck(10, 99)
    moved = manifest.database.archived("other-bucket", "copy/database.sql.gz")
    assert (moved.uri, moved.size) == ("s3://other-bucket/copy/database.sql.gz", 1234)
    users = Artefact(key="p/users.json", size=2, sha256="cc")
    assert users.file_name == "users.json"
    assert manifest.summary()["tables"] == 3 and manifest.summary()["files"] == 3
