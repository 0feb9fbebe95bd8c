"""The local platform's MariaDB: up() gives a working admin, is idempotent, down() cleans up.

It runs a real mariadbd in a scratch directory on a port of its own (moved with
WPENV_TEST_PORT_BASE), so it can run next to a developer's platform (port 23306) and other
test sessions without touching them. It also proves the platform refuses what RDS with
`require_secure_transport=ON` refuses: a login without TLS, TLS older than 1.2, and a
`REQUIRE SSL` user without TLS even where the server-wide switch is off.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

PORT = int(os.environ.get("WPENV_TEST_PORT_BASE", "28000")) + 906


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


def _verified(env: dict[str, str], host: str = "127.0.0.1") -> Any:
    """The admin over TLS, the certificate checked against the exported CA and `host`."""
    return pymysql.connect(host=host, port=int(env["MYSQL_TCP_PORT"]), user=env["MYSQL_USER"],
                           password=env["MYSQL_PWD"], ssl_ca=env["WPENV_DB_CA_BUNDLE"],
                           ssl_verify_identity=True, autocommit=True)


def _in_clear(env: dict[str, str], user: str, password: str) -> Any:
    """A login that does not even offer TLS."""
    return pymysql.connect(host=env["MYSQL_HOST"], port=int(env["MYSQL_TCP_PORT"]), user=user,
                           password=password, ssl_disabled=True, connect_timeout=5)


def _cli(env: dict[str, str], sql: str, *options: str) -> subprocess.CompletedProcess[str]:
    """The mysql CLI with nothing but the platform's exported variables, as after `source`."""
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL")}
    cli_env.update(env)
    return subprocess.run(["mysql", *options, "--batch", "-e", sql], env=cli_env,
                          capture_output=True, text=True, check=False)


def _sql(env: dict[str, str], statement: str) -> list[tuple[Any, ...]]:
    connection = _verified(env)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return list(cursor.fetchall())
    finally:
        connection.close()


def test_up_gives_an_admin_is_idempotent_and_down_cleans_up(scratch: Path) -> None:
    """What the rest of the platform relies on: a TCP admin, reuse, and a clean down()."""
    started = time.monotonic()
    env = mariadb.up(scratch, {})
    cold = time.monotonic() - started
    print(f"cold up(): {cold:.2f} s")

    assert set(env) == {"MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_USER", "MYSQL_PWD",
                        "MYSQL_HOME", "WPENV_DB_CA_BUNDLE"}
    assert env["MYSQL_HOST"] == "127.0.0.1"
    assert env["MYSQL_TCP_PORT"] == str(PORT)
    assert env["MYSQL_USER"] == "wpenv_admin"
    password_file = scratch / "mariadb" / "admin-password"
    assert password_file.stat().st_mode & 0o777 == 0o600

    connection = _verified(env)
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

    # `source .local/env; mysql`: host, port and password from MYSQL_*, the user and TLS
    # (the CA, verifying the server) from $MYSQL_HOME/my.cnf.
    result = _cli(env, "SHOW DATABASES; SHOW STATUS LIKE 'Ssl_version'")
    assert result.returncode == 0, result.stderr
    assert "wpenv_probe" in result.stdout.split()
    assert re.search(r"Ssl_version\tTLSv1\.[23]", result.stdout), result.stdout

    assert mariadbd_pids_under(scratch / "mariadb")
    mariadb.down(scratch)
    assert mariadbd_pids_under(scratch / "mariadb") == []
    assert not (scratch / "mariadb").exists()
    mariadb.down(scratch)  # down on nothing is fine


def test_tls_is_required_verified_and_1_2_or_newer(scratch: Path) -> None:
    """What RDS with require_secure_transport=ON refuses, the platform refuses too."""
    env = mariadb.up(scratch, {})
    variables = dict(_sql(env, "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
                               "('require_secure_transport', 'tls_version')"))
    assert variables == {"require_secure_transport": "ON", "tls_version": "TLSv1.2,TLSv1.3"}
    _verified(env, host="localhost").close()  # the certificate names localhost too

    # A plain-text login is refused (MariaDB answers 1045; RDS for MySQL 3159).
    with pytest.raises(pymysql.err.OperationalError) as plain:
        _in_clear(env, env["MYSQL_USER"], env["MYSQL_PWD"]).close()
    assert plain.value.args[0] == 1045
    assert env["MYSQL_PWD"] not in str(plain.value)
    refused = _cli(env, "SELECT 1", "--skip-ssl", "--skip-ssl-verify-server-cert")
    assert refused.returncode != 0 and "ERROR 1045" in refused.stderr

    # TLS 1.1 is refused by the server, whatever the client offers.
    old = _cli(env, "SELECT 1", "--tls-version=TLSv1.1")
    assert old.returncode != 0 and "ERROR 2026" in old.stderr, old.stderr

    # The CLI verifies the server: with another CA it does not connect.
    system_ca = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(system_ca):
        untrusted = _cli(env, "SELECT 1", f"--ssl-ca={system_ca}")
        assert untrusted.returncode != 0 and "ERROR 2026" in untrusted.stderr


def test_a_user_that_requires_ssl_is_refused_without_tls(scratch: Path) -> None:
    """REQUIRE SSL holds on its own, even where the server-wide switch is off."""
    env = mariadb.up(scratch, {})
    for statement in (
        "SET GLOBAL require_secure_transport = OFF",
        "CREATE USER 'probe_ssl'@'%' IDENTIFIED BY 'pw-ssl' REQUIRE SSL",
        "CREATE USER 'probe_plain'@'%' IDENTIFIED BY 'pw-plain'",
    ):
        _sql(env, statement)
    try:
        _in_clear(env, "probe_plain", "pw-plain").close()  # the switch is off indeed
        with pytest.raises(pymysql.err.OperationalError) as refused:
            _in_clear(env, "probe_ssl", "pw-ssl").close()
        assert refused.value.args[0] == 1045
        conn = pymysql.connect(host=env["MYSQL_HOST"], port=int(env["MYSQL_TCP_PORT"]),
                               user="probe_ssl", password="pw-ssl",
                               ssl_ca=env["WPENV_DB_CA_BUNDLE"], ssl_verify_identity=True)
        conn.close()  # with TLS it logs in
    finally:
        _sql(env, "SET GLOBAL require_secure_transport = ON")


def test_lost_certificates_are_made_again_and_the_server_restarted(scratch: Path) -> None:
    env = mariadb.up(scratch, {})
    tls = mariadb.Tls(scratch / "mariadb" / "tls")
    before = tls.ca_cert.read_bytes()
    assert stat.S_IMODE(tls.server_key.stat().st_mode) == 0o600
    tls.server_cert.unlink()
    again = mariadb.up(scratch, {})
    assert again == env
    assert tls.complete() and tls.ca_cert.read_bytes() != before
    _verified(again).close()  # the restarted server presents the new certificate
