"""Database dumps to S3 and their verification, against the platform's MariaDB and moto."""

from __future__ import annotations

import os
import subprocess
import time
import tracemalloc
import uuid
import zlib
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.integration.archive.conftest import (
    MakeDatabase,
    Sql,
    object_missing,
    scratch_databases,
)
from tests.platform.faults import corrupt_s3_uploads
from tests.platform.pki import cert_pem, issue, new_key, write_file
from wpenv.archive.database import (
    DatabaseDump,
    TableCheck,
    dump_database,
    load_sql,
    open_connection,
    scratch_database_name,
    table_checks,
    verify_dump,
)
from wpenv.archive.errors import ArchiveError, ArchiveVerificationError
from wpenv.archive.s3stream import MIB, PART_SIZE, Destination, iter_object
from wpenv.mysql import DatabaseServer

pytestmark = pytest.mark.e2e

DumpSample = Callable[..., tuple[str, DatabaseDump]]


@pytest.fixture
def key(prefix: str) -> str:
    """Where this test's dump goes."""
    return f"{prefix}/database.sql.gz"


@pytest.fixture
def dump_sample(
    master: DatabaseServer, make_database: MakeDatabase, s3: Any, bucket: str, key: str
) -> DumpSample:
    """Make a database (make_database's options) and dump it to `key`; returns both."""

    def run(**options: Any) -> tuple[str, DatabaseDump]:
        database = make_database(**options)
        return database, dump_database(master, database, Destination(s3, bucket, key))

    return run


def _dump_text(s3: Any, bucket: str, key: str) -> str:
    return zlib.decompress(b"".join(iter_object(s3, bucket, key)), 31).decode("utf-8")


def test_dump_then_verify_round_trips_every_kind_of_table(
    master: DatabaseServer, dump_sample: DumpSample, s3: Any, bucket: str, key: str, sql: Sql
) -> None:
    database, dump = dump_sample(definer=f"'{master.user}'@'%'")

    assert set(dump.tables) == {
        "wp_posts",
        "wp_blobs",
        "wp_empty",
        "wp_options",
        "wp_legacy",
        "wp-dashed",
    }
    assert dump.tables["wp_empty"] == TableCheck(rows=0, checksum=0)
    assert dump.tables["wp_posts"].rows == 50 and dump.tables["wp_blobs"].rows == 4
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentLength"] == dump.object.size

    text = _dump_text(s3, bucket, key)
    lines = text.splitlines()
    # Loadable into any database: no CREATE DATABASE, no USE of the original name.
    assert not [line for line in lines if line.upper().startswith(("CREATE DATABASE", "USE "))]
    assert f"`{database}`" not in text
    assert "0x000102030405" in text  # BLOBs as hex
    assert "TRIGGER" in text and "PROCEDURE" in text and "EVENT" in text

    checks = verify_dump(master, s3, database, dump.object, dump.tables)
    assert checks == dump.tables
    assert scratch_database_name(database, dump.object.uri) not in scratch_databases(sql)


def test_password_is_never_in_argv_or_environment(
    make_database: MakeDatabase,
    s3: Any,
    bucket: str,
    key: str,
    sql: Sql,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = make_database()
    user = f"arch{uuid.uuid4().hex[:8]}"
    password = "we\"ird\\pa ss#w$rd'x;`\ttab"  # every character an option file must escape
    sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", password)
    try:
        sql(f"GRANT ALL ON *.* TO '{user}'@'%'")
        server = DatabaseServer("127.0.0.1", int(os.environ["MYSQL_TCP_PORT"]), user, password,
                                os.environ["WPENV_DB_CA_BUNDLE"])
        launched: list[tuple[list[str], dict[str, str]]] = []
        real_popen = subprocess.Popen

        def spy(argv: list[str], *args: Any, **kwargs: Any) -> Any:
            launched.append((list(argv), dict(kwargs.get("env") or {})))
            return real_popen(argv, *args, **kwargs)

        monkeypatch.setattr(subprocess, "Popen", spy)
        dump = dump_database(server, database, Destination(s3, bucket, key))
        verify_dump(server, s3, database, dump.object)
    finally:
        sql(f"DROP USER IF EXISTS '{user}'@'%'")
    assert len(launched) == 2  # the dump and the load
    for argv, env in launched:
        assert argv[1].startswith("--defaults-file=/dev/fd/")  # a pipe, never a file
        assert not any(password in part for part in argv)
        assert not any(password in value for value in env.values())
        assert not [key for key in env if key.startswith("MYSQL_")]


def test_a_wrong_password_fails_without_showing_it(
    master: DatabaseServer, make_database: MakeDatabase, s3: Any, bucket: str, key: str
) -> None:
    database = make_database(fill=False)
    wrong = replace(master, password="Not-The-Password-0123456789")
    with pytest.raises(ArchiveError) as caught:
        dump_database(wrong, database, Destination(s3, bucket, key))
    assert caught.value.reason == "DatabaseDumpFailed"
    assert "1045" in str(caught.value)  # access denied
    assert wrong.password not in str(caught.value) and master.password not in str(caught.value)
    assert object_missing(s3, bucket, key)


def _foreign_ca(directory: Path) -> str:
    """A CA that never signed the platform's server certificate."""
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-the-rds-ca")])
    path = directory / "other-ca.pem"
    write_file(path, cert_pem(issue(name, key, issuer=name, issuer_key=key, days=1,
                                    is_ca=True)), secret=False)
    return str(path)


def test_the_dump_and_load_clients_refuse_a_server_they_cannot_verify(
    master: DatabaseServer, make_database: MakeDatabase, s3: Any, bucket: str, key: str,
    tmp_path: Path,
) -> None:
    """The client programs verify the certificate (ssl-verify-server-cert), as pymysql does:
    against another CA the dump fails before any login, and nothing reaches S3."""
    database = make_database(fill=False)
    untrusting = replace(master, ca_bundle=_foreign_ca(tmp_path))
    with pytest.raises(ArchiveError) as caught:
        dump_database(untrusting, database, Destination(s3, bucket, key))
    assert caught.value.reason == "DatabaseDumpFailed"
    assert "2026" in str(caught.value)  # the client's TLS error
    assert master.password not in str(caught.value)
    assert object_missing(s3, bucket, key)
    with pytest.raises(ArchiveVerificationError) as loading:
        load_sql(untrusting, database, [b"CREATE TABLE never (v INT);\n"])
    assert loading.value.reason == "DatabaseLoadFailed"
    assert "2026" in str(loading.value)


def test_a_missing_database_fails_and_leaves_no_object(
    master: DatabaseServer, s3: Any, bucket: str, key: str
) -> None:
    with pytest.raises(ArchiveError, match="dumping database wp_nope_"):
        dump_database(master, f"wp_nope_{uuid.uuid4().hex[:8]}", Destination(s3, bucket, key))
    assert object_missing(s3, bucket, key)


def test_verify_fails_on_a_corrupted_upload_and_drops_the_scratch_database(
    master: DatabaseServer, dump_sample: DumpSample, s3: Any, key: str, faults: str, sql: Sql
) -> None:
    corrupt_s3_uploads(faults, key_suffix=key)
    database, dump = dump_sample()
    with pytest.raises(ArchiveVerificationError) as caught:
        verify_dump(master, s3, database, dump.object, dump.tables)
    assert caught.value.reason in {
        "ArchiveCorrupt",
        "ArchiveChecksumMismatch",
        "DatabaseLoadFailed",
    }
    assert scratch_database_name(database, dump.object.uri) not in scratch_databases(sql)


def test_verify_fails_when_a_row_changed_after_the_dump(
    master: DatabaseServer, dump_sample: DumpSample, s3: Any, sql: Sql
) -> None:
    database, dump = dump_sample()
    sql(
        "UPDATE wp_options SET option_value = 'http://y/' WHERE option_name = 'siteurl'",
        database=database,
    )
    with pytest.raises(ArchiveVerificationError, match="table wp_options has another checksum"):
        verify_dump(master, s3, database, dump.object)
    assert scratch_database_name(database, dump.object.uri) not in scratch_databases(sql)


def test_verify_fails_on_an_added_table_and_a_deleted_row(
    master: DatabaseServer, dump_sample: DumpSample, s3: Any, sql: Sql
) -> None:
    database, dump = dump_sample()
    sql("CREATE TABLE wp_late (id INT)", database=database)
    sql("DELETE FROM wp_posts WHERE ID = 3", database=database)
    with pytest.raises(ArchiveVerificationError) as caught:
        verify_dump(master, s3, database, dump.object, dump.tables)
    message = str(caught.value)
    assert "table wp_late is missing from the archive" in message
    assert "table wp_posts has 49 rows in the original, 50 in the archive" in message


def test_a_large_dump_is_multipart_and_memory_stays_bounded(
    master: DatabaseServer,
    make_database: MakeDatabase,
    s3: Any,
    bucket: str,
    key: str,
    sql: Sql,
) -> None:
    database = make_database(fill=False)
    sql("CREATE TABLE wp_media (id INT PRIMARY KEY, data LONGBLOB)", database=database)
    raw = 12 * MIB  # random bytes dump as ~24 MiB of hex, which gzips to ~13 MiB
    row = 512 * 1024
    with closing(open_connection(master, database)) as conn, conn.cursor() as cursor:
        for number in range(raw // row):
            cursor.execute("INSERT INTO wp_media VALUES (%s, %s)", (number, os.urandom(row)))
    started = time.monotonic()
    tracemalloc.start()
    try:
        dump = dump_database(master, database, Destination(s3, bucket, key))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dump.object.size > PART_SIZE
    # The SQL text is ~24 MiB; one 8 MiB part is buffered, little else.
    assert peak < min(2 * PART_SIZE, raw), f"peak {peak / MIB:.1f} MiB"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith(f"-{dump.object.size // PART_SIZE + 1}")
    checks = verify_dump(master, s3, database, dump.object, dump.tables)
    assert checks["wp_media"].rows == raw // row
    assert time.monotonic() - started < 60


def test_checks_see_every_base_table_but_not_views(
    master: DatabaseServer, make_database: MakeDatabase
) -> None:
    database = make_database(definer=f"'{master.user}'@'%'")
    with closing(open_connection(master)) as conn:
        checks = table_checks(conn, database)
    assert "wp_recent" not in checks  # a view
    assert checks["wp-dashed"].rows == 1
    assert all(check.checksum is not None for check in checks.values())
