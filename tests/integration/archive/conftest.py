"""Fixtures for the archive tests: the master login, sample databases and directories.

Everything talks to the platform's real MariaDB and moto server; the fault hook (tests/
platform/faults.py) damages uploads where a test needs a corrupt archive.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.platform.faults import clear_faults
from wpenv.archive.database import open_connection
from wpenv.aws import Clients
from wpenv.mysql import DatabaseServer, master_server
from wpenv.settings import Settings

Sql = Callable[..., list[tuple[Any, ...]]]
MakeDatabase = Callable[..., str]

UNICODE_TEXT = "Grüße, 東京, Ελληνικά, emoji 😀🎉, quotes ' \" \\ and a\nnewline\ttab"


@pytest.fixture(scope="session")
def master(settings: Settings, clients: Clients) -> DatabaseServer:
    """The master login, read from the master secret like the finalizer does."""
    return master_server(settings, clients)


@pytest.fixture(scope="session")
def sql(master: DatabaseServer) -> Sql:
    """Run one statement as the master, in `database` if given; returns the rows."""

    def run(statement: str, *args: Any, database: str | None = None) -> list[tuple[Any, ...]]:
        with closing(open_connection(master, database)) as conn, conn.cursor() as cursor:
            cursor.execute(statement, args or None)
            return list(cursor.fetchall())

    return run


@pytest.fixture
def s3(clients: Clients) -> Any:
    """The S3 client the library is given in production too."""
    return clients.s3


@pytest.fixture
def bucket(settings: Settings) -> str:
    """The platform's archive bucket."""
    return settings.archive_bucket


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own."""
    return f"it-archive/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def faults(platform: dict[str, str]) -> Iterator[str]:
    """The moto endpoint for the fault helpers; every fault is cleared after the test."""
    endpoint = platform["AWS_ENDPOINT_URL"]
    clear_faults(endpoint)
    yield endpoint
    clear_faults(endpoint)


def object_missing(s3: Any, bucket: str, key: str) -> bool:
    """Whether S3 answers "no such object" (any other error is raised, not taken as absence)."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return exc.response["Error"]["Code"] in ("404", "NoSuchKey")
    return False


def fill_sample(master: DatabaseServer, database: str, definer: str | None = None) -> None:
    """Tables a WordPress database could have, and the odd ones: BLOBs, unicode, empty.

    With `definer` (a 'user'@'host' account) a trigger, a view, a procedure and an event
    are created too, owned by that account as they would be by the tenant's user.
    """
    rng = random.Random(7)
    tables = [
        "CREATE TABLE wp_posts (ID BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,"
        " post_title TEXT NOT NULL, post_content LONGTEXT, post_date DATETIME(6),"
        " score DECIMAL(10,4), ratio DOUBLE, flags SET('a','b','c'), kind ENUM('post','page'))"
        " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
        "CREATE TABLE wp_blobs (id INT PRIMARY KEY, data LONGBLOB, nothing BLOB NULL)"
        " ENGINE=InnoDB",
        "CREATE TABLE wp_empty (id INT PRIMARY KEY, v VARCHAR(10))",
        "CREATE TABLE wp_options (option_name VARCHAR(191) PRIMARY KEY,"
        " option_value LONGTEXT NOT NULL, autoload VARCHAR(20) NOT NULL DEFAULT 'yes')"
        " DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE wp_legacy (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM"
        " DEFAULT CHARSET=latin1",
        "CREATE TABLE `wp-dashed` (id INT PRIMARY KEY)",
    ]
    posts = [
        (
            f"{UNICODE_TEXT} #{number}",
            UNICODE_TEXT * number,
            f"2026-01-{number % 28 + 1:02d} 12:34:56.{number:06d}",
            number / 7,
            number / 3,
            "a,c",
            "post" if number % 2 else "page",
        )
        for number in range(1, 51)
    ]
    blobs = [bytes(range(256)), b"", b"\x00\x27\x5c\x22" * 100, rng.randbytes(300_000)]
    with closing(open_connection(master, database)) as conn, conn.cursor() as cursor:
        for statement in tables:
            cursor.execute(statement)
        conn.begin()  # one commit for all rows
        cursor.executemany(
            "INSERT INTO wp_posts (post_title, post_content, post_date, score, ratio, flags,"
            " kind) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            posts,
        )
        cursor.executemany("INSERT INTO wp_blobs VALUES (%s, %s, NULL)", list(enumerate(blobs, 1)))
        cursor.execute(
            "INSERT INTO wp_options VALUES ('siteurl', 'http://x/', 'yes'),"
            " ('blogname', %s, 'yes')",
            (UNICODE_TEXT,),
        )
        cursor.execute("INSERT INTO wp_legacy VALUES (1, 'caf\xe9')")
        cursor.execute("INSERT INTO `wp-dashed` VALUES (1)")
        conn.commit()
        if definer:
            for statement in (
                f"CREATE DEFINER={definer} TRIGGER wp_posts_title BEFORE INSERT ON wp_posts"
                " FOR EACH ROW SET NEW.post_title = TRIM(NEW.post_title)",
                f"CREATE DEFINER={definer} SQL SECURITY DEFINER VIEW wp_recent AS"
                " SELECT ID, post_title FROM wp_posts WHERE ID > 40",
                f"CREATE DEFINER={definer} PROCEDURE wp_count() SELECT COUNT(*) FROM wp_posts",
                f"CREATE DEFINER={definer} EVENT wp_cleanup ON SCHEDULE EVERY 1 DAY"
                " DO DELETE FROM wp_empty",
            ):
                cursor.execute(statement)


@pytest.fixture
def make_database(master: DatabaseServer, sql: Sql) -> Iterator[MakeDatabase]:
    """Create databases `wp_t<hex>` (filled with the sample unless told not to); dropped after."""
    made: list[str] = []

    def build(*, fill: bool = True, definer: str | None = None) -> str:
        name = f"wp_t{uuid.uuid4().hex[:12]}"
        sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        made.append(name)
        if fill:
            fill_sample(master, name, definer)
        return name

    yield build
    for name in made:
        sql(f"DROP DATABASE IF EXISTS `{name}`")


def scratch_databases(sql: Sql) -> list[str]:
    """Verification's scratch databases that exist right now."""
    rows = sql(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'wpv\\_%'"
    )
    return [str(row[0]) for row in rows]


def fill_directory(root: Path, outside: Path) -> None:
    """A tenant directory: nested dirs, an empty file, links in and out, odd names and modes."""
    (root / "wp-content" / "uploads" / "2026" / "11").mkdir(parents=True)
    (root / "wp-content" / "plugins" / "empty-dir").mkdir(parents=True)
    (root / "wp-config.php").write_text("<?php // config\n")
    (root / "wp-config.php").chmod(0o640)
    (root / "empty.txt").write_bytes(b"")
    (root / "wp-content" / "uploads" / "2026" / "11" / "photo.jpg").write_bytes(os.urandom(70_000))
    (root / "wp-content" / "uploads" / "Grüße 東京.txt").write_text("unicode name\n")
    (root / "wp-content" / "index.php").write_text("<?php // Silence is golden.\n")
    os.utime(root / "wp-content" / "index.php", (1_700_000_000, 1_700_000_000))
    (root / "latest").symlink_to("wp-content/uploads/2026/11/photo.jpg")
    (root / "escape").symlink_to(outside)  # must stay a link, never followed
    (root / "wp-content" / "dirlink").symlink_to("uploads")
    os.link(root / "wp-config.php", root / "wp-config.hardlink")
