"""The local platform's MariaDB: up() gives a working admin, is idempotent, down() cleans up.

It runs a real mariadbd in a scratch directory on a non-default port, so it can run next to
a developer's platform (port 23306) without touching it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from tests.platform import mariadb

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.geteuid() != 0 and shutil.which("mariadbd", path=mariadb.SEARCH_PATH) is None,
        reason="mariadbd is missing and installing it needs root",
    ),
]

PORT = 23906


def mariadbd_pids_under(directory: Path) -> list[int]:
    """Pids of mariadbd processes whose command line mentions ``directory``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0].decode(errors="replace")) != "mariadbd":
            continue
        if any(str(directory).encode() in arg for arg in argv):
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A scratch state directory (not the session platform's); always torn down."""
    monkeypatch.setenv("WPENV_MYSQL_PORT", str(PORT))
    try:
        yield tmp_path
    finally:
        mariadb.down(tmp_path)


def test_up_gives_an_admin_is_idempotent_and_down_cleans_up(scratch: Path) -> None:
    """What the rest of the platform relies on: a TCP admin, reuse, and a clean down()."""
    started = time.monotonic()
    env = mariadb.up(scratch, {})
    cold = time.monotonic() - started
    print(f"cold up(): {cold:.2f} s")

    assert set(env) == {"MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_USER", "MYSQL_PWD"}
    assert env["MYSQL_HOST"] == "127.0.0.1"
    assert env["MYSQL_TCP_PORT"] == str(PORT)
    assert env["MYSQL_USER"] == "wpenv_admin"
    password_file = scratch / "mariadb" / "admin-password"
    assert password_file.stat().st_mode & 0o777 == 0o600

    connection = pymysql.connect(
        host=env["MYSQL_HOST"],
        port=int(env["MYSQL_TCP_PORT"]),
        user=env["MYSQL_USER"],
        password=env["MYSQL_PWD"],
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE IF NOT EXISTS wpenv_probe")
            cursor.execute("SHOW GRANTS")
            grants = " ".join(str(row[0]) for row in cursor.fetchall())
    finally:
        connection.close()
    assert "ALL PRIVILEGES ON *.*" in grants
    assert "WITH GRANT OPTION" in grants

    started = time.monotonic()
    again = mariadb.up(scratch, {})
    warm = time.monotonic() - started
    print(f"warm up(): {warm:.2f} s")
    # Compared as a bool so that a failure cannot print the password.
    same = again == env
    assert same, "the second up() returned different variables"
    assert warm < 5.0

    # The mysql CLI takes host, port and password from the environment, user from -u.
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL")}
    cli_env.update({k: env[k] for k in ("MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_PWD")})
    result = subprocess.run(
        ["mysql", "-u", "wpenv_admin", "--batch", "-e", "SHOW DATABASES"],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "wpenv_probe" in result.stdout.split()

    assert mariadbd_pids_under(scratch / "mariadb")
    mariadb.down(scratch)
    assert mariadbd_pids_under(scratch / "mariadb") == []
    assert not (scratch / "mariadb").exists()
    mariadb.down(scratch)  # down on nothing is fine
