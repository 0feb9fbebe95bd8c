"""The whole archive (as the finalizer makes it) and `python -m wpenv.archive`, end to end.

Tenants are provisioned with the real DatabaseSecret and Database steps (secret, database,
user with its grant) and a directory on the platform's stand-in for EFS, the way a new
environment is before anything is restored into it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.archive.conftest import Sql, fill_directory, fill_sample, scratch_databases
from tests.integration.conftest import MakeCtx
from tests.platform.faults import corrupt_s3_uploads
from wpenv.archive import archive_environment, tenant_directory
from wpenv.archive.database import open_connection, scratch_database_name, table_checks
from wpenv.archive.errors import ArchiveVerificationError
from wpenv.archive.files import scan_members
from wpenv.archive.manifest import Manifest
from wpenv.aws import Clients
from wpenv.mysql import DatabaseServer
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
WHEN = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)

Provision = Callable[[], Context]


@pytest.fixture
def provision(provisioned: MakeCtx, settings: Settings) -> Iterator[Provision]:
    """New environments' data stores: secret, database and user, directory; removed after."""
    made: list[Path] = []

    def build() -> Context:
        ctx = provisioned()
        directory = tenant_directory(settings, ctx.names.tenant)
        directory.mkdir(mode=0o750, parents=True)
        made.append(directory)
        return ctx

    yield build
    for directory in made:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def source(
    provision: Provision, master: DatabaseServer, settings: Settings, tmp_path: Path
) -> Context:
    """An environment with data: the sample database (objects owned by its user) and files."""
    ctx = provision()
    fill_sample(master, ctx.names.database, definer=f"`{ctx.names.database_user}`@`%`")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the tenant's\n")
    fill_directory(tenant_directory(settings, ctx.names.tenant), outside)
    return ctx


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m wpenv.archive ...` with this process's (the platform's) environment."""
    return subprocess.run(
        [sys.executable, "-m", "wpenv.archive", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _checks(master: DatabaseServer, database: str) -> dict[str, Any]:
    with closing(open_connection(master)) as conn:
        return dict(table_checks(conn, database))


def test_archive_then_restore_into_a_new_tenant(
    source: Context,
    provision: Provision,
    settings: Settings,
    clients: Clients,
    master: DatabaseServer,
    sql: Sql,
) -> None:
    manifest = archive_environment(
        settings,
        clients,
        source.namespace,
        source.name,
        source.names.tenant,
        now=WHEN,
        users=[{"username": "alice", "groups": ["Admin"]}],
    )
    bucket = settings.archive_bucket
    assert manifest.prefix == f"archives/{source.namespace}/{source.name}/20261127T143000Z"
    stored = clients.s3.get_object(Bucket=bucket, Key=f"{manifest.prefix}/manifest.json")
    raw = json.loads(stored["Body"].read())
    assert raw["tenantId"] == source.names.tenant and raw["timestamp"] == "20261127T143000Z"
    assert raw["database"]["tables"]["wp_empty"] == {"rows": 0, "checksum": 0}
    source_dir = tenant_directory(settings, source.names.tenant)
    assert raw["files"]["members"] == len(scan_members(source_dir))
    assert Manifest.from_json(json.dumps(raw)) == manifest
    for artefact in manifest.artefacts():
        head = clients.s3.head_object(Bucket=bucket, Key=artefact.key)
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ContentLength"] == artefact.size
    assert manifest.users is not None and manifest.notes == []

    target = provision()
    uri = f"s3://{bucket}/{manifest.prefix}/"
    done = cli("restore", uri, "--tenant", target.names.tenant)
    assert done.returncode == 0, done.stderr
    assert "tables restored and checked" in done.stdout
    assert "skipped (unsafe link or special file): 'escape'" in done.stdout

    # The database: the same tables and data, objects now owned by the new tenant's user.
    assert manifest.database is not None
    restored = _checks(master, target.names.database)
    assert restored == manifest.database.checks() == _checks(master, source.names.database)
    definers = sql(
        "SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
        "UNION ALL SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s "
        "UNION ALL SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s "
        "UNION ALL SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
        *[target.names.database] * 4,
    )
    assert definers == [(f"{target.names.database_user}@%",)] * 4
    scratch = scratch_database_name(source.names.database, manifest.database.archived(bucket).uri)
    assert scratch not in scratch_databases(sql)

    # The files: everything but the link out of the directory, owned by the new tenant.
    old_dir = tenant_directory(settings, source.names.tenant)
    new_dir = tenant_directory(settings, target.names.tenant)
    expected = [m for m in scan_members(old_dir) if m.name != "escape"]
    assert scan_members(new_dir) == expected
    photo = Path("wp-content/uploads/2026/11/photo.jpg")
    assert (new_dir / photo).read_bytes() == (old_dir / photo).read_bytes()
    assert (new_dir / "wp-content" / "index.php").stat().st_mtime == 1_700_000_000
    if os.geteuid() == 0:
        assert (new_dir / photo).stat().st_uid == target.names.posix_uid
        assert (new_dir / "latest").lstat().st_uid == target.names.posix_uid

    # A second restore is refused: the target is no longer empty...
    again = cli("restore", uri, "--tenant", target.names.tenant, "--database-only")
    assert again.returncode == 1 and "RestoreTargetNotEmpty" in again.stderr
    again = cli("restore", uri, "--tenant", target.names.tenant, "--files-only")
    assert again.returncode == 1 and "not empty; pass --force" in again.stderr
    # ...unless forced.
    sql("CREATE TABLE wp_stray (id INT)", database=target.names.database)
    forced = cli("restore", uri, "--tenant", target.names.tenant, "--force", "--database-only")
    assert forced.returncode == 0, forced.stderr
    assert _checks(master, target.names.database) == restored  # the stray table is gone

    listed = cli("list", f"s3://{bucket}/archives/{source.namespace}/{source.name}/")
    assert listed.returncode == 0, listed.stderr
    assert f"{uri}  complete" in listed.stdout


def test_restore_refuses_a_tenant_that_was_not_provisioned(
    source: Context, settings: Settings, clients: Clients
) -> None:
    manifest = archive_environment(
        settings, clients, source.namespace, source.name, source.names.tenant, now=WHEN
    )
    uri = f"s3://{settings.archive_bucket}/{manifest.prefix}"
    done = cli("restore", uri, "--tenant", "never-provisioned", "--database-only")
    assert done.returncode == 1
    assert "database wp_never_provisioned does not exist: provision" in done.stderr
    done = cli("restore", uri, "--tenant", "never-provisioned", "--files-only")
    assert done.returncode == 1 and "RestoreTargetMissing" in done.stderr


def test_restore_checks_the_objects_before_changing_anything(
    source: Context, provision: Provision, settings: Settings, clients: Clients, sql: Sql
) -> None:
    manifest = archive_environment(
        settings, clients, source.namespace, source.name, source.names.tenant, now=WHEN
    )
    assert manifest.files is not None and manifest.database is not None
    bucket = settings.archive_bucket
    clients.s3.put_object(Bucket=bucket, Key=manifest.files.key, Body=b"tampered")
    clients.s3.put_object(Bucket=bucket, Key=manifest.database.key, Body=b"tampered")
    target = provision()
    done = cli("restore", f"s3://{bucket}/{manifest.prefix}/", "--tenant", target.names.tenant)
    assert done.returncode == 1 and "ArchiveChecksumMismatch" in done.stderr
    assert sql(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
        target.names.database,
    ) == [(0,)]
    assert list(tenant_directory(settings, target.names.tenant).iterdir()) == []


def test_a_corrupted_upload_fails_the_archive_and_writes_no_manifest(
    source: Context, settings: Settings, clients: Clients, faults: str, sql: Sql
) -> None:
    prefix = f"archives/{source.namespace}/{source.name}/20261127T143000Z"
    corrupt_s3_uploads(faults, key_suffix=f"{prefix}/database.sql.gz")
    with pytest.raises(ArchiveVerificationError):
        archive_environment(
            settings, clients, source.namespace, source.name, source.names.tenant, now=WHEN
        )
    listed = clients.s3.list_objects_v2(Bucket=settings.archive_bucket, Prefix=prefix)
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert keys == [f"{prefix}/database.sql.gz"]  # no files, no manifest
    uri = f"s3://{settings.archive_bucket}/{prefix}/database.sql.gz"
    assert scratch_database_name(source.names.database, uri) not in scratch_databases(sql)
    listed_cli = cli("list", f"s3://{settings.archive_bucket}/{prefix}/")
    assert f"{prefix}/  INCOMPLETE" in listed_cli.stdout
