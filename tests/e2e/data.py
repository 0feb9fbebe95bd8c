"""A tenant's data as WordPress writes it, and the checks that prove an archive kept it.

Shared by the end-to-end tests of deprovisioning and of crashes: what they write before
`kubectl delete`, and how they read it back afterwards, as an auditor would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pymysql

from tests.e2e import envs
from tests.platform import kube
from wpenv.archive.restore import (
    ArchiveListing,
    ArchiveLocation,
    list_archives,
    read_manifest,
    restore,
)
from wpenv.aws import Clients
from wpenv.engine import make_context
from wpenv.reconcilers.database import Database
from wpenv.reconcilers.db_secret import DatabaseSecret
from wpenv.settings import Settings


def tenant_login(obj: envs.Obj) -> dict[str, Any]:
    """The tenant's own MySQL login, from its secret (as WordPress gets it)."""
    arn = obj["status"]["resources"]["dbSecretArn"]
    value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    secret: dict[str, Any] = json.loads(value)
    return secret


def master() -> pymysql.connections.Connection[Any]:
    """The platform's admin login (the RDS master's stand-in)."""
    return pymysql.connect(host=os.environ["MYSQL_HOST"], port=int(os.environ["MYSQL_TCP_PORT"]),
                           user=os.environ["MYSQL_USER"], password=os.environ["MYSQL_PWD"])


def write_rows(obj: envs.Obj) -> dict[str, tuple[int, int]]:
    """Tables as WordPress would make them; returns {table: (rows, checksum)}."""
    login = tenant_login(obj)
    conn = pymysql.connect(host=login["host"], port=int(login["port"]), user=login["username"],
                           password=login["password"], database=login["dbname"],
                           autocommit=True, charset="utf8mb4")
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE wp_posts (id INT PRIMARY KEY AUTO_INCREMENT, "
                    "title VARCHAR(200), body LONGTEXT, img BLOB) CHARSET utf8mb4")
        cur.execute("CREATE TABLE wp_options (name VARCHAR(64) PRIMARY KEY, value TEXT)")
        cur.execute("CREATE TABLE wp_empty (id INT)")
        cur.executemany("INSERT INTO wp_posts (title, body, img) VALUES (%s, %s, %s)",
                        [(f"Post {i} ünïcode ✓", "x" * (i * 37), bytes(range(i % 256)))
                         for i in range(500)])
        cur.executemany("INSERT INTO wp_options VALUES (%s, %s)",
                        [(f"opt{i}", f"value {i}") for i in range(50)])
        return checks(cur, login["dbname"])


def checks(cur: Any, database: str) -> dict[str, tuple[int, int]]:
    """{table: (rows, CHECKSUM TABLE)} of every table of `database`."""
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema=%s",
                (database,))
    found = {}
    for (table,) in cur.fetchall():
        cur.execute(f"SELECT COUNT(*) FROM `{database}`.`{table}`")
        (rows,) = cur.fetchone()
        cur.execute(f"CHECKSUM TABLE `{database}`.`{table}`")
        found[table] = (rows, cur.fetchone()[1])
    return found


def write_files(tenant: str) -> dict[str, int]:
    """Files as WordPress would leave them in the tenant's directory; {name: size}."""
    root = Path(os.environ["WPENV_EFS_MOUNT_PATH"]) / "tenants" / tenant
    (root / "uploads" / "2026" / "11").mkdir(parents=True, exist_ok=True)
    (root / "uploads" / "2026" / "11" / "photo.jpg").write_bytes(os.urandom(300_000))
    (root / "plugins").mkdir(exist_ok=True)
    (root / "plugins" / "hello.php").write_text("<?php // hello\n")
    (root / "empty.txt").write_bytes(b"")
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def gone(platform: dict[str, str], namespace: str, name: str, timeout: float = 180) -> None:
    """Wait until the environment no longer exists (the finalizer was released)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = kube.kubectl("get", "wpenv", name, "-n", namespace, "-o", "name",
                              env=platform, check=False)
        if result.returncode != 0 and "NotFound" in result.stderr:
            return
        time.sleep(0.5)
    raise AssertionError(f"{namespace}/{name} still exists after {timeout}s")


def read_object(uri: str) -> bytes:
    """The whole object at `s3://bucket/key`."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body: bytes = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def file_digests(root: Path) -> dict[str, str]:
    """{relative name: sha256} of every file under `root`."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def tenant_root(tenant: str) -> Path:
    """The tenant's directory on the shared file system."""
    return Path(os.environ["WPENV_EFS_MOUNT_PATH"]) / "tenants" / tenant


def archives(namespace: str, name: str) -> list[ArchiveListing]:
    """Every archive the environment `namespace/name` left in the archive bucket."""
    settings = Settings()
    uri = f"s3://{settings.archive_bucket}/{settings.archive_prefix}/{namespace}/{name}/"
    return list_archives(Clients(settings).s3, uri)


@dataclass(frozen=True)
class Restored:
    """What an archive gave back in a fresh tenant: its tables' checks and files' digests."""

    tables: dict[str, tuple[int, int]]
    files: dict[str, str]
    users: list[str]


def restore_elsewhere(namespace: str, uri: str) -> Restored:
    """Restore the archive at `uri` into a new tenant, read it back, and remove the tenant.

    The new tenant's secret, database and directory are made by the operator's own steps
    (as `kubectl apply` would make them), then `wpenv.archive.restore` fills them: the
    dump loads and the tar extracts, each checked against the manifest first.
    """
    settings = Settings()
    clients = Clients(settings)
    tenant = envs.tenant()
    ctx = make_context(namespace, "restored", {"tenantId": tenant}, settings=settings,
                       clients=clients)
    kinds = (DatabaseSecret(), Database())
    root = tenant_root(tenant)
    try:
        for kind in kinds:
            kind.create(ctx, kind.observe(ctx))
        root.mkdir(mode=0o750, parents=True)
        restore(settings, clients, uri, tenant)
        with master() as conn, conn.cursor() as cur:
            tables = checks(cur, ctx.names.database)
        manifest = read_manifest(clients.s3, ArchiveLocation.parse(uri))
        users = []
        if manifest.users is not None:
            document = json.loads(read_object(f"s3://{manifest.bucket}/{manifest.users.key}"))
            users = sorted(user["username"] for user in document["users"])
        return Restored(tables, file_digests(root), users)
    finally:
        for kind in reversed(kinds):
            kind.ensure_absent(ctx)
        shutil.rmtree(root, ignore_errors=True)
