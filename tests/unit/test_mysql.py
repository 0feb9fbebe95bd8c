"""The shared MySQL access without a server: error mapping, logins that hide passwords."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path
from typing import Any

import pymysql
import pytest

from wpenv import mysql
from wpenv.errors import TransientError
from wpenv.settings import Settings

SECRET_WORD = "not-a-real-password"


def _free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("code", sorted(mysql.UNREACHABLE_CODES))
def test_an_unreachable_server_becomes_transient(code: int) -> None:
    with pytest.raises(TransientError) as caught, mysql.reachable():
        raise pymysql.err.OperationalError(code, f"gone, login {SECRET_WORD}")
    assert caught.value.reason == "DatabaseUnreachable"
    assert str(caught.value) == mysql.UNREACHABLE
    assert SECRET_WORD not in str(caught.value)


def test_a_refused_login_is_not_called_unreachable() -> None:
    with pytest.raises(pymysql.err.OperationalError) as caught, mysql.reachable():
        raise pymysql.err.OperationalError(1045, "Access denied")
    assert mysql.error_code(caught.value) == 1045


def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(pymysql.err.ProgrammingError), mysql.reachable():
        raise pymysql.err.ProgrammingError(2003, "not an OperationalError")
    with pytest.raises(ValueError, match="unrelated"), mysql.reachable():
        raise ValueError("unrelated")


def test_a_real_refused_connection_is_unreachable() -> None:
    """pymysql's own error for a closed port (2003) maps, and names no password."""
    server = mysql.DatabaseServer("127.0.0.1", _free_port(), "admin", SECRET_WORD)
    with pytest.raises(TransientError) as caught, mysql.reachable():
        mysql.connect(server, connect_timeout=2)
    assert caught.value.reason == "DatabaseUnreachable"
    assert SECRET_WORD not in str(caught.value)


def test_error_codes() -> None:
    assert mysql.error_code(pymysql.err.OperationalError(2013, "lost")) == 2013
    assert mysql.error_code(pymysql.err.InterfaceError("no number")) is None
    assert mysql.error_code(ValueError()) is None
    assert mysql.is_unreachable(pymysql.err.OperationalError(1040, "too many"))
    assert not mysql.is_unreachable(pymysql.err.OperationalError(1045, "denied"))


def test_a_login_never_shows_its_password() -> None:
    server = mysql.DatabaseServer("db.example", 3306, "admin", SECRET_WORD)
    assert SECRET_WORD not in repr(server)
    assert SECRET_WORD not in str(server)


def test_no_master_secret_is_transient_and_needs_no_aws() -> None:
    settings = Settings(db_master_secret_arn="")
    with pytest.raises(mysql.MasterSecretUnsetError) as caught:
        mysql.master_server(settings, clients=None)
    assert isinstance(caught.value, TransientError)
    assert caught.value.reason == "MasterSecretMissing"
    assert str(caught.value) == mysql.MASTER_UNSET
    with pytest.raises(mysql.MasterSecretUnsetError):
        mysql.master_connection(settings, clients=None)


class _Secrets:
    """A Secrets Manager stand-in holding one value (no AWS, no boto3 patched)."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value
        self.asked: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803 (boto3's name)
        self.asked.append(SecretId)
        return {"SecretString": json.dumps(self.value)}


class _Clients:
    def __init__(self, value: dict[str, Any]) -> None:
        self.secretsmanager = _Secrets(value)


def test_the_master_login_is_the_secrets_and_the_endpoint_the_settings() -> None:
    """RDS's managed master secret holds username and password only; nothing else is read."""
    settings = Settings(db_master_secret_arn="arn:master", db_host="rds.example",
                        db_port=3307, db_ca_bundle="/etc/rds/global-bundle.pem")
    clients = _Clients({"username": "admin", "password": SECRET_WORD})
    server = mysql.master_server(settings, clients)
    assert server == mysql.DatabaseServer(
        "rds.example", 3307, "admin", SECRET_WORD, "/etc/rds/global-bundle.pem"
    )
    assert clients.secretsmanager.asked == ["arn:master"]


def test_no_endpoint_is_transient_and_names_the_setting() -> None:
    settings = Settings(db_master_secret_arn="arn:master", db_host="")
    with pytest.raises(mysql.DatabaseHostUnsetError) as caught:
        mysql.master_server(settings, _Clients({"username": "a", "password": SECRET_WORD}))
    assert isinstance(caught.value, TransientError)
    assert caught.value.reason == "DatabaseHostMissing"
    assert "WPENV_DB_HOST" in str(caught.value)


def test_every_connection_verifies_the_server_over_tls_1_2_or_newer() -> None:
    context = mysql.tls_context("")
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_an_unreadable_ca_bundle_is_a_tls_failure_not_a_fallback(tmp_path: Path) -> None:
    for bundle in (tmp_path / "missing.pem", tmp_path / "empty.pem"):
        if bundle.name == "empty.pem":
            bundle.write_text("not a certificate\n")
        with pytest.raises(mysql.TlsFailedError) as caught:
            mysql.tls_context(str(bundle))
        assert caught.value.reason == "DatabaseTlsFailed"
        assert str(bundle) in str(caught.value)


def test_a_wrapped_ssl_error_is_a_tls_failure() -> None:
    wrapped = pymysql.err.OperationalError(2003, "Can't connect ([SSL] verify failed)")
    wrapped.original_exception = ssl.SSLCertVerificationError("verify failed")  # type: ignore[attr-defined]
    assert mysql._tls_failure(wrapped)
    assert mysql._tls_failure(pymysql.err.OperationalError(2026, "SSL is required"))
    assert not mysql._tls_failure(pymysql.err.OperationalError(2003, "refused"))


def test_client_programs_get_the_same_verification() -> None:
    server = mysql.DatabaseServer("db.example", 3306, "admin", SECRET_WORD, "/ca.pem")
    assert mysql.tls_options(server, mariadb=True) == [
        ("ssl-ca", "/ca.pem"), ("ssl", None), ("ssl-verify-server-cert", None),
        ("tls-version", "TLSv1.2,TLSv1.3"),
    ]
    assert mysql.tls_options(server, mariadb=False) == [
        ("ssl-ca", "/ca.pem"), ("ssl-mode", "VERIFY_IDENTITY"), ("tls-version", "TLSv1.2,TLSv1.3"),
    ]
